"""Activation checkpointing of the Conformer blocks (train.grad_checkpoint): same training, less memory."""
import pytest
import torch

from csmvanet.nets import build_model
from csmvanet.nets.loss import build_loss


def _config(tiny_config):
    cfg = tiny_config
    cfg["model"].update(num_conformers=2, dropout=0.2)     # dropout: recomputation must redraw the same masks
    return cfg


def _train(cfg, checkpointing: bool, steps: int = 3):
    torch.manual_seed(0)
    model = build_model(cfg).train().set_grad_checkpointing(checkpointing)
    loss_fn = build_loss(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    noisy, clean = torch.randn(2, 3200, generator=g), torch.randn(2, 3200, generator=g)
    labels = (torch.rand(2, 33, generator=g) > 0.5).float()
    torch.manual_seed(2)                                   # the same dropout stream in both runs
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(noisy), clean, labels)["loss"]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.state_dict(), losses


def test_checkpointing_gives_the_same_weights_and_buffers_after_n_steps(tiny_config):
    cfg = _config(tiny_config)
    plain, loss_plain = _train(cfg, False)
    ckpt, loss_ckpt = _train(cfg, True)
    assert loss_plain == torch.tensor(loss_ckpt).tolist() or torch.allclose(
        torch.tensor(loss_plain), torch.tensor(loss_ckpt), rtol=1e-5, atol=1e-6)
    assert plain.keys() == ckpt.keys()
    # parameters and the BatchNorm running statistics and batch counters (buffers) alike
    bad = [k for k in plain if not torch.allclose(plain[k].float(), ckpt[k].float(), rtol=1e-4, atol=1e-6)]
    assert not bad, f"differ after 3 steps with checkpointing: {bad[:5]}"
    assert any("bn.num_batches_tracked" in k and int(ckpt[k]) == 3 for k in ckpt)


def _saved_bytes(model, noisy) -> int:
    """Bytes autograd keeps for backward during one forward pass."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(noisy)["wave"].sum()
    return total[0]


def test_checkpointing_keeps_fewer_activations_and_only_while_training(tiny_config):
    cfg = _config(tiny_config)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    noisy = torch.randn(2, 8000)
    plain = _saved_bytes(model, noisy)
    model.set_grad_checkpointing(True)
    less = _saved_bytes(model, noisy)
    assert less < 0.8 * plain, (less, plain)
    with torch.no_grad():                                  # eval / inference: no checkpoint machinery
        a = model.eval()(noisy)["wave"]
        b = model.set_grad_checkpointing(False)(noisy)["wave"]
    assert torch.equal(a, b)


@pytest.mark.parametrize("flag", [False, True])
def test_trainer_passes_train_grad_checkpoint_to_the_model(tiny_config, tmp_path, flag):
    from test_train import make_data_dir

    from csmvanet.experiment.resolved_config import TRAIN_DEFAULTS, resolve_config
    from csmvanet.train.trainer import Trainer

    assert TRAIN_DEFAULTS["grad_checkpoint"] is False
    tr = make_data_dir(tmp_path / "tr", 2, [0.5], seed=1)
    cv = make_data_dir(tmp_path / "cv", 1, [0.5], seed=2)
    cfg = dict(tiny_config, train={"grad_checkpoint": flag, "num_workers": 0, "tensorboard": False,
                                   "plot": False, "batch_size": 2, "segment_seconds": 0.3})
    trainer = Trainer(resolve_config(cfg), tr, cv, tmp_path / "exp")
    try:
        assert trainer.module.grad_checkpoint is flag
    finally:
        trainer._logging.close()
