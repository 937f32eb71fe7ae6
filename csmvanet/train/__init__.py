"""Training engine: the paper's schedule, validation, reports, resume, fine-tuning start, DDP."""
