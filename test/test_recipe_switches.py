"""The recipe shell layer without training: run.sh options (generated --help, stage checks, ESPnet
switches), the checks of steps/{decode,train,score}.sh before they touch anything, and the
RESULTS.md of several sets (csmvanet-score --collect).

Every run.sh here stops at its checks or at the first step, so each test takes seconds.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EGS = ROOT / "egs"
RECIPES = ["TEMPLATE", "mini", "voicebank", "librispeech_demand", "voiceprompts"]
SKELETON = EGS / "TEMPLATE" / "steps" / "recipe.sh"
ESPNET_SWITCHES = ["skip_data_prep", "skip_train", "skip_eval", "inference_nj", "gpu_inference",
                   "inference_model", "score_opts",
                   # issue 29: enh.sh's names (docs/espnet-switches.md)
                   "enh_config", "enh_args", "enh_tag", "inference_args", "enh_exp", "inference_tag", "inference_enh_config",
                   "ref_num", "use_noise_ref", "speed_perturb_factors", "min_wav_duration", "max_wav_duration",
                   "local_data_opts", "init_param", "audio_format", "scoring_protocol", "num_nodes", "fs"]
OPTION_LINE = re.compile(r"^([a-z][a-z0-9_]*)=")


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def run_sh(recipe: str, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(["./run.sh", *map(str, args)], cwd=EGS / recipe, capture_output=True, text=True,
                          timeout=timeout, env=env())


def option_names(path: Path) -> list[str]:
    """Column-0 assignments above `recipe_init` (run.sh) or the first function (the skeleton)."""
    names = []
    for line in path.read_text().splitlines():
        if line.startswith("recipe_init") or re.match(r"^[A-Za-z_]\w*\(\)", line):
            break
        m = OPTION_LINE.match(line)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    return names


def defaults(recipe: str, names: list[str]) -> dict[str, str]:
    """The values the variables hold when run.sh reaches recipe_init, by running run.sh's text up
    to that line (not through the help generator)."""
    text = (EGS / recipe / "run.sh").read_text().split("\nrecipe_init", 1)[0]
    dump = "".join(f'printf "%s\\t%s\\n" {n} "${{{n}}}"\n' for n in names)
    r = subprocess.run(["bash", "-c", text + "\n" + dump], cwd=EGS / recipe, capture_output=True, text=True,
                       env=env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return dict(line.split("\t", 1) for line in r.stdout.splitlines())


# ---------------------------------------------------------------- --help
@pytest.mark.parametrize("recipe", RECIPES)
def test_help_lists_every_option_with_its_default_and_a_description(recipe):
    names = option_names(SKELETON) + [n for n in option_names(EGS / recipe / "run.sh")
                                      if n not in option_names(SKELETON)]
    assert set(ESPNET_SWITCHES) <= set(names)
    want = defaults(recipe, names)
    r = run_sh(recipe, "--help")
    assert r.returncode == 0, r.stderr
    listed = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^  --(\w+) +(.*) \(default: \"(.*)\"\)$", line)
        if m:
            listed[m.group(1)] = (m.group(2).strip(), m.group(3))
    assert sorted(listed) == sorted(names), "options and --help differ"
    for n in names:
        desc, default = listed[n]
        assert default == want[n], f"--{n}: help says {default!r}, the variable holds {want[n]!r}"
        assert desc, f"--{n} has no help text: add '  # ...' to its line"
    assert "Stages" in r.stdout or "stage" in r.stdout.split("Options")[0].lower()


def test_help_shows_a_recipes_own_default_over_the_shared_one():
    r = run_sh("voicebank", "--help")
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("  --nj "))
    assert line.endswith('(default: "8")') and "resampling" in line
    line = next(ln for ln in run_sh("mini", "--help").stdout.splitlines() if ln.startswith("  --ngpu "))
    assert line.endswith('(default: "0")')


# ---------------------------------------------------------------- stage numbers and switches
# where a stage 0 that ran by mistake would write (never the recipe folder)
CORPUS_ROOTS = {"TEMPLATE": lambda d: [], "mini": lambda d: ["--corpus", d],
                "voicebank": lambda d: ["--voicebank_root", d],
                "librispeech_demand": lambda d: ["--librispeech_root", d, "--demand_root", d],
                "voiceprompts": lambda d: ["--downloads", d, "--corpus", d]}
BAD = [
    (["--stage", "9"], "--stage 9"),
    (["--stop_stage", "6"], "--stop_stage 6"),
    (["--stage", "4", "--stop_stage", "2"], "--stop_stage 2 is below --stage 4"),
    (["--stage", "abc"], "--stage 'abc' is not a number"),
    (["--stage", "-1"], "--stage '-1' is not a number"),
    (["--nj", "0"], "--nj 0"),
    (["--inference_nj", "x"], "--inference_nj 'x'"),
    (["--skip_train", "yes"], "--skip_train"),
    (["--gpu_inference", "1"], "--gpu_inference"),
    (["--no_such_option", "1"], "--no_such_option"),
    (["extra"], "unexpected arguments: extra"),
    # ESPnet's switches that cannot apply, refused with the reason
    (["--ref_num", "2"], "--ref_num 2: csmvanet enhances one speaker"),
    (["--fs", "16kHz"], "--fs '16kHz': give Hz (16000) or kHz (16k)"),
    (["--audio_format", "flac.ark"], "--audio_format flac.ark: Kaldi ark audio is not written here"),
    (["--audio_format", "mp3"], "--audio_format 'mp3': wav or flac"),
    (["--scoring_protocol", "STOI SDR SAR SIR SI_SNR"], "csmvanet-score does not compute SDR"),
    (["--scoring_protocol", "FOO"], "--scoring_protocol FOO: unknown metric"),
    (["--speed_perturb_factors", "0.9 x"], "--speed_perturb_factors: 'x' is not a number"),
    (["--min_wav_duration", "abc"], "--min_wav_duration 'abc' is not a number of seconds"),
    (["--init_param", "/no/such/model.pth"], "--init_param: no such file or folder: /no/such/model.pth"),
    (["--use_noise_ref", "maybe"], "--use_noise_ref"),
    (["--inference_enh_config", "/no/such.yaml"], "--inference_enh_config: no such file: /no/such.yaml"),
    (["--inference_tag", "a/b"], "--inference_tag 'a/b'"),
    (["--num_nodes", "0"], "--num_nodes 0"),
]


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_stage_numbers_and_switches_are_refused_before_anything_runs(recipe, args, message, tmp_path):
    r = run_sh(recipe, "--datadir", tmp_path / "d", "--dumpdir", tmp_path / "u", "--expdir", tmp_path / "e",
               *CORPUS_ROOTS[recipe](tmp_path / "c"), *args)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert "line " not in r.stderr, r.stderr  # no bash error
    assert "Stage" not in r.stdout
    assert list(tmp_path.iterdir()) == []


def dirs(tmp_path):
    return ["--datadir", tmp_path / "data", "--dumpdir", tmp_path / "dump", "--expdir", tmp_path / "exp"]


def stages_logged(text: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"\(run\.sh:\d+\) Stage (\d): (.*)", text)}


def test_skip_train_skips_stage_3_and_runs_stage_4(tmp_path):
    # a data dir for stage 4, no model: stage 4 runs and stops at decode.sh's model check
    for x in ("valid", "test"):
        (tmp_path / "dump" / x).mkdir(parents=True)
        (tmp_path / "dump" / x / "wav.scp").write_text(f"u1 {tmp_path}/u1.wav\n")
    r = run_sh("mini", *dirs(tmp_path), "--stage", 3, "--stop_stage", 4, "--skip_train", "true")
    log = stages_logged(r.stdout)
    assert log[3].startswith("skipped (--skip_train true)")
    assert log[4].startswith("enhance valid test")
    assert r.returncode != 0 and "no such experiment dir" in r.stderr
    assert not (tmp_path / "exp").exists()


def test_skip_data_prep_skips_stages_0_to_2_and_runs_stage_3(tmp_path):
    r = run_sh("mini", *dirs(tmp_path), "--corpus", tmp_path / "corpus", "--stop_stage", 3,
               "--skip_data_prep", "true")
    log = stages_logged(r.stdout)
    assert all(log[n].startswith("skipped (--skip_data_prep true)") for n in (0, 1, 2))
    assert log[3].startswith("train ")
    assert r.returncode != 0 and "no such file" in r.stderr and "dump/train/wav.scp" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no corpus, no data dirs


def test_skip_eval_skips_stages_4_and_5(tmp_path):
    r = run_sh("mini", *dirs(tmp_path), "--stage", 3, "--skip_train", "true", "--skip_eval", "true")
    assert r.returncode == 0, r.stderr
    log = stages_logged(r.stdout)
    assert sorted(log) == [3, 4, 5]
    assert log[4].startswith("skipped (--skip_eval true)") and log[5].startswith("skipped (--skip_eval true)")
    assert "Done (stages 3-5)" in r.stdout


def test_inference_switches_reach_decode(tmp_path):
    """--inference_model, --gpu_inference, --inference_nj are passed to steps/decode.sh (seen in
    its message for a model that is not there)."""
    for x in ("valid", "test"):
        (tmp_path / "dump" / x).mkdir(parents=True)
        (tmp_path / "dump" / x / "wav.scp").write_text(f"u1 {tmp_path}/u1.wav\n")
    (tmp_path / "exp" / "csmvanet_train").mkdir(parents=True)
    r = run_sh("mini", *dirs(tmp_path), "--stage", 4, "--stop_stage", 4, "--inference_model", "other.pth")
    assert r.returncode != 0 and f"no such model file: {tmp_path}/exp/csmvanet_train/other.pth" in r.stderr
    assert stages_logged(r.stdout)[4].startswith("enhance valid test with")
    r = run_sh("mini", *dirs(tmp_path), "--stage", 4, "--stop_stage", 4, "--inference_nj", "0")
    assert r.returncode != 0 and "--inference_nj 0" in r.stderr


# ---------------------------------------------------------------- steps/*.sh check before they touch
def digest(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(d.rglob("*"))}


def step(script: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([f"steps/{script}", *map(str, args)], cwd=EGS / "mini", capture_output=True,
                          text=True, env=env(), timeout=60)


@pytest.fixture
def decoded(tmp_path):
    """A data dir, an exp dir with a (fake) model and the outputs of an earlier decoding."""
    data, exp = tmp_path / "data", tmp_path / "exp"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {tmp_path}/u1.wav\nu2 {tmp_path}/u2.wav\n")
    (data / "spk1.scp").write_text(f"u1 {tmp_path}/c1.wav\nu2 {tmp_path}/c2.wav\n")
    enh = exp / "enhanced_test"
    (enh / "split" / "vad.1").mkdir(parents=True)
    (enh / "scoring" / "split2" / "1").mkdir(parents=True)
    (exp / "valid.loss.ave.pth").write_bytes(b"weights")
    for f in ("enhanced.scp", "vad_prob.scp", "segments", "vad.rttm", "split/wav.1.scp", "scoring/RESULTS.md",
              "scoring/split2/1/x"):
        (enh / f).write_text(f"earlier {f}\n")
    return data, exp, enh


@pytest.mark.parametrize("args,message", [
    (["--nj", "0"], "--nj must be a positive number, not '0'"),
    (["--nj", "abc"], "--nj must be a positive number, not 'abc'"),
    (["--model", "missing.pth"], "no such model file"),
    (["--use_gpu", "maybe"], "--use_gpu"),
])
def test_decode_checks_its_options_before_removing_earlier_outputs(decoded, args, message):
    data, exp, enh = decoded
    before = digest(exp)
    r = step("decode.sh", *args, data, exp, enh)
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert "usage" not in r.stderr.lower() or "--nj" in r.stderr
    assert digest(exp) == before


def test_decode_with_a_missing_wav_scp_removes_nothing(decoded, tmp_path):
    _, exp, enh = decoded
    before = digest(exp)
    r = step("decode.sh", tmp_path / "nodata", exp, enh)
    assert r.returncode != 0 and "no such file" in r.stderr and "nodata/wav.scp" in r.stderr
    assert digest(exp) == before


@pytest.mark.parametrize("args,message", [
    (["--nj", "0"], "--nj must be a positive number"),
    (["--nj", "two"], "--nj must be a positive number"),
    (["--pesq_mode", "xx"], "--pesq_mode must be wb or nb"),
    (["--published", "/no/such.yaml"], "--published: no such file"),
])
def test_score_checks_its_options_before_removing_earlier_outputs(decoded, args, message):
    data, exp, enh = decoded
    before = digest(exp)
    r = step("score.sh", *args, data, enh)
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert digest(exp) == before


@pytest.mark.parametrize("args,message", [
    (["--ngpu", "x"], "--ngpu must be a number"),
    (["--num_threads", "0"], "--num_threads must be a positive number"),
    (["--num_nodes", "2"], "needs a Slurm allocation"),
    (["--resume", "false"], "already holds a training run"),
])
def test_train_checks_its_options_before_touching_the_exp_dir(decoded, args, message, tmp_path):
    data, exp, _ = decoded
    (exp / "train.log").write_text("earlier log\n")
    (exp / "checkpoint_last.pth").write_bytes(b"ckpt")
    valid = tmp_path / "valid"
    valid.mkdir()
    for f in ("wav.scp", "spk1.scp"):
        (valid / f).write_text((data / f).read_text())
    before = digest(exp)
    e = {k: v for k, v in env().items() if k != "SLURM_JOB_ID"}
    r = subprocess.run(["steps/train.sh", *args, "conf/train.yaml", str(data), str(valid), str(exp)],
                       cwd=EGS / "mini", capture_output=True, text=True, env=e, timeout=60)
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert digest(exp) == before  # train.log not rotated, nothing written


# ---------------------------------------------------------------- RESULTS.md of several sets
def scoring_dir(d: Path, title: str, pesq: float) -> Path:
    d.mkdir(parents=True)
    means = {"noisy": {"pesq": pesq - 1, "stoi": 0.8, "num_utts": 3},
             "enhanced": {"pesq": pesq, "stoi": 0.9, "vad_f1": 0.95, "num_utts": 3}}
    (d / "summary.yaml").write_text(yaml.safe_dump({"title": title, "num_scored": 3, "means": means}))
    (d / "RESULTS.md").write_text(f"# {title}: scoring results\n\n## Table I layout\n\n![best u1](figures/best_u1.png)\n")
    return d


def test_collect_writes_every_set_into_one_results_md(tmp_path):
    exp = tmp_path / "exp"
    test = scoring_dir(exp / "enhanced_test" / "scoring", "tag", 3.0)
    valid = scoring_dir(exp / "enhanced_valid" / "scoring", "tag", 2.5)
    r = subprocess.run([sys.executable, "-m", "csmvanet.bin.score", "--collect", f"test={test}",
                        f"valid={valid}", f"other={tmp_path / 'other'}", "--title", "tag", "--out_dir", exp],
                       capture_output=True, text=True, env=env())
    assert r.returncode == 1 and "no such folder" in r.stderr  # a set without a scoring folder
    (tmp_path / "other").mkdir()
    r = subprocess.run([sys.executable, "-m", "csmvanet.bin.score", "--collect", f"test={test}",
                        f"valid={valid}", f"other={tmp_path / 'other'}", "--title", "tag", "--out_dir", exp],
                       capture_output=True, text=True, env=env())
    assert r.returncode == 0, r.stderr
    md = (exp / "RESULTS.md").read_text()
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines() if ln.startswith("| ")]
    assert rows[0][:3] == ["Set", "System", "Utterances"]
    assert [r_[:4] for r_ in rows[1:5]] == [["test", "Noisy", "3", "2.00"], ["test", "tag", "3", "3.00"],
                                           ["valid", "Noisy", "3", "1.50"], ["valid", "tag", "3", "2.50"]]
    assert rows[5][0] == "other" and "not scored" in rows[5][1]
    assert "# Set test: tag: scoring results" in md and "# Set valid: tag: scoring results" in md
    assert md.index("# Set test") < md.index("# Set valid")
    assert "](enhanced_test/scoring/figures/best_u1.png)" in md
    assert "](enhanced_valid/scoring/figures/best_u1.png)" in md


# ---------------------------------------------------------------- ESPnet's switches reach the steps
def test_espnet_fs_spelling_16k_is_16000_and_16_khz_corpora_refuse_others(tmp_path):
    r = run_sh("voicebank", *dirs(tmp_path), "--voicebank_root", tmp_path / "vb", "--stage", 2, "--stop_stage", 2,
               "--fs", "16k")
    assert stages_logged(r.stdout)[2].startswith("resample 48 kHz -> 16000 Hz"), r.stdout
    assert r.returncode != 0 and "run stage 1" in r.stderr  # prepare_dump.sh took --fs 16000 and checked its inputs
    for recipe in ("mini", "voiceprompts"):
        r = run_sh(recipe, *dirs(tmp_path), *CORPUS_ROOTS[recipe](tmp_path / "c"), "--fs", "8k")
        assert r.returncode != 0 and "--fs 8000: this recipe's corpus is 16 kHz" in r.stderr
    r = run_sh("voicebank", *dirs(tmp_path), "--voicebank_root", tmp_path / "vb", "--use_noise_ref", "true")
    assert r.returncode != 0 and "--use_noise_ref true: VoiceBank+DEMAND ships mixtures" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_espnet_training_aliases_reach_stage_3(tmp_path):
    """--enh_config/--enh_args are --train_config/--train_args; --speed_perturb_factors and the
    length filter make stage 3 train on <train_set>_sp (tag _sp, as ESPnet's exp dir)."""
    r = run_sh("mini", *dirs(tmp_path), "--stage", 3, "--stop_stage", 3, "--enh_config", "conf/other.yaml",
               "--enh_args", "--train.epochs 1", "--train_args", "--optim.lr 1e-4")
    log = stages_logged(r.stdout)[3]
    assert log.startswith(f"train {tmp_path}/exp/csmvanet_other on {tmp_path}/dump/train with conf/other.yaml")
    assert "(overrides: --optim.lr 1e-4 --train.epochs 1)" in log
    assert r.returncode != 0 and "no such file: conf/other.yaml" in r.stderr
    r = run_sh("mini", *dirs(tmp_path), "--stage", 3, "--stop_stage", 3, "--speed_perturb_factors", "0.9 1.0 1.1")
    assert stages_logged(r.stdout)[3].startswith(f"train {tmp_path}/exp/csmvanet_train_sp on {tmp_path}/dump/train_sp ")
    assert "dump/train_sp/wav.scp" in r.stderr
    r = run_sh("mini", *dirs(tmp_path), "--stage", 3, "--stop_stage", 3, "--enh_tag", "mytag")
    assert stages_logged(r.stdout)[3].startswith(f"train {tmp_path}/exp/mytag on {tmp_path}/dump/train ")
    r = run_sh("mini", *dirs(tmp_path), "--stage", 3, "--stop_stage", 3, "--max_wav_duration", "20",
               "--enh_exp", tmp_path / "myexp")
    assert stages_logged(r.stdout)[3].startswith(f"train {tmp_path}/myexp on {tmp_path}/dump/train_sp ")


def test_espnet_inference_switches_reach_decode_and_score(tmp_path):
    for x in ("valid", "test"):
        (tmp_path / "dump" / x).mkdir(parents=True)
        for f in ("wav.scp", "spk1.scp"):
            (tmp_path / "dump" / x / f).write_text(f"u1 {tmp_path}/u1.wav\n")
    exp = tmp_path / "myexp"
    exp.mkdir()
    settings = tmp_path / "inference.yaml"
    settings.write_text("vad_floor: 0.5\nsegment_seconds: 4\n")
    r = run_sh("mini", *dirs(tmp_path), "--stage", 4, "--stop_stage", 4, "--enh_exp", exp, "--inference_tag", "myenh",
               "--inference_model", "other.pth", "--inference_args", "--vad_threshold 0.6",
               "--inference_enh_config", settings)
    assert stages_logged(r.stdout)[4].endswith(f"-> {exp}/myenh_<set>")
    assert r.returncode != 0 and f"no such model file: {exp}/other.pth" in r.stderr
    settings.write_text("vad_floor: [1, 2]\n")
    r = run_sh("mini", *dirs(tmp_path), "--enh_exp", exp, "--inference_enh_config", settings)
    assert r.returncode != 0 and "expected one `option: value` line per csmvanet-enhance option" in r.stderr
    # stage 5 looks for the decoded sets under the inference tag
    r = run_sh("mini", *dirs(tmp_path), "--stage", 5, "--enh_exp", exp, "--inference_tag", "myenh")
    assert r.returncode != 0 and "no such file" in r.stderr and "myexp/myenh_test/enhanced.scp" in r.stderr


def test_local_data_opts_reach_data_prep(tmp_path):
    r = run_sh("voicebank", *dirs(tmp_path), "--voicebank_root", tmp_path / "vb", "--stage", 1, "--stop_stage", 1,
               "--local_data_opts", "--no_such_prep_option 1")
    assert r.returncode != 0 and "--no_such_prep_option" in r.stderr and "local/data_prep.sh" in r.stderr


def test_mini_stage_2_with_noise_reference_flac_and_speed_perturbation(tmp_path):
    """--use_noise_ref true writes noise1.scp into the dumps, --audio_format flac writes .flac, and
    --speed_perturb_factors makes dump/train_sp (sp1.1- copies with their noise, VAD labels, validated)."""
    r = run_sh("mini", *dirs(tmp_path), "--corpus", tmp_path / "corpus", "--stop_stage", 2, "--utts_per_speaker", 2,
               "--num_train", 6, "--nj", 1, "--use_noise_ref", "true", "--audio_format", "flac",
               "--speed_perturb_factors", "1.0 1.1", "--max_wav_duration", "2.1", timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    dump = tmp_path / "dump"
    for x in ("train", "valid", "test"):
        noise = dump / x / "noise1.scp"
        assert noise.is_file(), x
        keys = [ln.split()[0] for ln in noise.read_text().splitlines()]
        assert keys == [ln.split()[0] for ln in (dump / x / "wav.scp").read_text().splitlines()]
        assert all(ln.split()[1].endswith(".flac") for ln in (dump / x / "spk1.scp").read_text().splitlines())
    sp = dump / "train_sp"
    keys = [ln.split()[0] for ln in (sp / "wav.scp").read_text().splitlines()]
    originals = [ln.split()[0] for ln in (dump / "train" / "wav.scp").read_text().splitlines()]
    assert sorted(keys) == sorted(originals + [f"sp1.1-{k}" for k in originals])
    for name in ("spk1.scp", "noise1.scp", "utt2spk", "utt2num_samples", "vad_labels.scp"):
        assert sorted(ln.split()[0] for ln in (sp / name).read_text().splitlines()) == sorted(keys), name
    assert "steps/perturb_train_set.sh: wrote" in r.stdout
