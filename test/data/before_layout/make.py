"""Made with the csmvanet of 79a6b86, the last commit before the subpackage layout (module names of then):
    git worktree add /tmp/old 79a6b86 && cd /tmp/old && bash tools/install.sh
    OMP_NUM_THREADS=1 tools/venv/bin/python <this file> OUT   (OUT/from_packed.npy -> enhanced.npy, *_vad.npy -> vad.npy)
A tiny exp dir, its packed file, and the enhanced output of a fixed input from both (identical)."""
import sys
from pathlib import Path
import numpy as np, soundfile as sf, torch, yaml
from csmvanet.nets import build_model
from csmvanet.checkpoint import save_checkpoint
from csmvanet.packing import pack_model
from csmvanet.enhance import Enhancer
from csmvanet.synthetic import noise, speech_like
import csmvanet.version as v
out = Path(sys.argv[1]); exp = out / "exp"; exp.mkdir(parents=True, exist_ok=True)
cfg = {"stft": {"sample_rate": 16000, "n_fft": 128, "win_length": 128, "hop_length": 64, "compress": 0.3},
       "model": {"channels": [4, 4], "num_conformers": 1, "heads": 1, "ff_mult": 1, "conv_kernel": 3,
                 "dropout": 0.0, "msgc": False, "vad_floor": 0.1}}
torch.manual_seed(3)
model = build_model(cfg)
(exp / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
save_checkpoint(model.state_dict(), exp / "valid.loss.ave.pth")
(exp / "inference.yaml").write_text("vad_floor: 0.2\nvad_threshold: 0.4\ninput_mix: 0.05\nsnr_limit: 30.0\n"
                                    "checkpoint: valid.loss.ave.pth\n")
pack_model(exp, out / "packed.pth")
s, _ = speech_like(0, seconds=1.0, sr=16000)
n = noise("white", 1, seconds=1.0, sr=16000)
x = (s + 0.1 * n[: len(s)]).astype(np.float32)
sf.write(out / "noisy.wav", x, 16000, subtype="PCM_16")
x = sf.read(out / "noisy.wav", dtype="float32")[0]
sf.write(out / "noisy.wav", x, 16000, subtype="PCM_16")
for name, src in (("from_packed", out / "packed.pth"), ("from_exp", exp)):
    enh = Enhancer.from_pretrained(src, segment_seconds=0.512, overlap_seconds=0.128)
    y, vad = enh.enhance(x, 16000)
    np.save(out / f"{name}.npy", np.stack([y]).astype(np.float32))
    np.save(out / f"{name}_vad.npy", vad.astype(np.float32))
    print(name, enh.vad_floor, enh.input_mix, enh.snr_limit, enh.vad_threshold, y.shape, vad.shape)
print("made with csmvanet", v.__version__, v.git_hash())
