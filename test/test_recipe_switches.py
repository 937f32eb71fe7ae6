"""The recipe shell layer without training: run.sh options (generated --help, stage checks, ESPnet
switches), the checks of steps/{decode,train,score}.sh before they touch anything, the
RESULTS.md of several sets (csmvanet-score --collect), and the shared stages 2-5: every recipe's
--dry_run gives steps/{prepare_dump,train,decode,score_sets}.sh the same switches.

Every run.sh here stops at its checks or at the first step, so each test takes seconds.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EGS = ROOT / "egs"
RECIPES = ["TEMPLATE", "mini", "voicebank", "librispeech_demand", "voiceprompts", "crossvoices"]
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
                "voiceprompts": lambda d: ["--downloads", d, "--corpus", d],
                "crossvoices": lambda d: ["--downloads", d, "--corpus", d]}
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


# ---------------------------------------------------------------- the shared stages in every recipe
# Stages 2-5 run the same steps (steps/prepare_dump.sh, train.sh, decode.sh, score_sets.sh) with the
# options steps/recipe.sh makes once; --dry_run true prints each command instead of running it.
DRY = re.compile(r"\(run\.sh:\d+\) \[dry run\] (.*)$")
SWITCHES = ["--nj", "3", "--inference_nj", "2", "--gpu_inference", "true", "--ngpu", "2", "--num_nodes", "2",
            "--fs", "16k", "--train_args", "--optim.lr 1e-4", "--enh_args", "--train.epochs 1", "--init_param", "init.pth",
            "--inference_model", "other.pth", "--enhance_args", "--segment_seconds 6", "--inference_args",
            "--vad_threshold 0.6", "--score_opts", "--pesq_mode nb", "--scoring_protocol", "PESQ STOI",
            "--inference_tag", "myenh", "--enh_tag", "mytag", "--published", "", "--audio_format", "flac",
            "--speed_perturb_factors", "0.9 1.0 1.1", "--min_wav_duration", "0.5", "--max_wav_duration", "20"]
# what each step must receive from every recipe given SWITCHES (values with white space normalised)
EXPECTED = {
    "prepare_dump.sh": {"nj": "3", "cmd": "utils/run.pl", "fs": "16000", "train_config": "conf/train.yaml",
                        "vad_config": "conf/vad.yaml", "audio_format": "flac", "train_set": "train",
                        "train_data": "train_sp", "speed_perturb_factors": "0.9 1.0 1.1", "min_wav_duration": "0.5",
                        "max_wav_duration": "20"},  # use_noise_ref: per recipe, below
    "train.sh": {"cmd": "utils/run.pl", "ngpu": "2", "num_nodes": "2", "train_args": "--optim.lr 1e-4 --train.epochs 1",
                 "init_param": "init.pth"},
    "decode.sh": {"nj": "2", "cmd": "utils/run.pl", "use_gpu": "true", "model": "other.pth",
                  "enhance_args": "--segment_seconds 6 --vad_threshold 0.6"},
    "score_sets.sh": {"nj": "3", "cmd": "utils/run.pl", "title": "mytag", "published": "", "score_opts": "--pesq_mode nb",
                      "valid_set": "valid", "inference_tag": "myenh", "scoring_protocol": "PESQ STOI"},
}
# a recipe's own options of a shared step (its corpus): allowed on top of EXPECTED
OWN = {"prepare_dump.sh": {"noise_types", "audio_in_set"}, "train.sh": {"num_threads"}, "score_sets.sh": {"append_md"}}


def dry_run(recipe: str, tmp_path: Path, *args) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    r = run_sh(recipe, *dirs(tmp_path), *CORPUS_ROOTS[recipe](tmp_path / "c"), "--dry_run", "true", *args)
    return r, [shlex.split(m.group(1)) for m in map(DRY.search, r.stdout.splitlines()) if m]


def split_options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """`--name value` pairs up to the first other word (a later one wins, as in utils/parse_options.sh)."""
    opts, i = {}, 1
    while i < len(argv) and argv[i].startswith("--"):
        opts[argv[i][2:]] = " ".join(argv[i + 1].split())
        i += 2
    return opts, argv[i:]


def step_options(script: str) -> set[str]:
    """The options a steps/ script accepts: its column-0 `name=` lines (utils/parse_options.sh)."""
    return set(re.findall(r"^([a-z][a-z0-9_]*)=", (EGS / "TEMPLATE" / "steps" / script).read_text(), re.M))


def test_every_recipe_lists_the_shared_switches_in_its_help():
    shared = option_names(SKELETON)
    assert {"num_nodes", "fs", "vad_config", "published", "dry_run", *ESPNET_SWITCHES} <= set(shared)
    for recipe in RECIPES:
        out = run_sh(recipe, "--help").stdout
        listed = set(re.findall(r"^  --(\w+) ", out, re.M))
        assert set(shared) <= listed, f"{recipe}: --help lacks {sorted(set(shared) - listed)}"


@pytest.mark.parametrize("recipe", RECIPES)
def test_dry_run_gives_every_shared_step_the_switches(recipe, tmp_path):
    noise_ref = "false" if recipe == "voicebank" else "true"   # VoiceBank ships no noise (refused, tested above)
    one_test = ["--test_sets", "test"] if recipe == "crossvoices" else []   # its default: test test_indomain
    r, cmds = dry_run(recipe, tmp_path, "--stage", 2, "--stop_stage", 5, *SWITCHES, "--use_noise_ref", noise_ref, *one_test)
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.iterdir()) == [], "a dry run wrote something"
    # the stage steps that take the shared option lists (a recipe's own extra steps, e.g. voiceprompts'
    # steps/tune_inference.sh and steps/pack_model.sh, take only its own options)
    steps = [c for c in cmds if c[0] in ("steps/prepare_dump.sh", "steps/train.sh", "steps/decode.sh", "steps/score_sets.sh")]
    assert [c[0] for c in steps] == ["steps/prepare_dump.sh", "steps/train.sh", "steps/decode.sh", "steps/decode.sh",
                                     "steps/score_sets.sh"], cmds
    exp = f"{tmp_path}/exp/mytag"
    positional = {"train.sh": ["conf/train.yaml", f"{tmp_path}/dump/train_sp", f"{tmp_path}/dump/valid", exp],
                  "score_sets.sh": [f"{tmp_path}/dump", exp, "test"]}
    decoded = []
    for argv in steps:
        script = argv[0].split("/", 1)[1]
        opts, args = split_options(argv)
        want = dict(EXPECTED[script], **({"use_noise_ref": noise_ref} if script == "prepare_dump.sh" else {}))
        got = {k: v for k, v in opts.items() if k in want}
        assert got == want, f"{recipe}: {script} got {got}"
        assert set(opts) - set(want) <= OWN.get(script, set()), f"{recipe}: {script}: {sorted(set(opts) - set(want))}"
        assert set(opts) <= step_options(script), f"{script} does not take {sorted(set(opts) - step_options(script))}"
        if script in positional:
            assert args == positional[script], f"{recipe}: {script} {args}"
        if script == "decode.sh":
            decoded.append(args)
        if script == "prepare_dump.sh":
            assert args[:2] == [f"{tmp_path}/data", f"{tmp_path}/dump"] and args[2:], args
    assert decoded == [[f"{tmp_path}/dump/{x}", exp, f"{exp}/myenh_{x}"] for x in ("valid", "test")]


@pytest.mark.parametrize("recipe", RECIPES)
def test_fs_reaches_stage_2_or_is_refused_by_a_16k_only_recipe(recipe, tmp_path):
    r, cmds = dry_run(recipe, tmp_path, "--stage", 1, "--stop_stage", 2, "--fs", "8k")
    if recipe in ("mini", "voiceprompts", "librispeech_demand", "crossvoices"):   # 16 kHz corpora, not resampled
        assert r.returncode != 0 and "--fs 8000: this recipe's corpus is 16 kHz and it does not resample" in r.stderr
        assert cmds == [] and "line " not in r.stderr
        return
    assert r.returncode == 0, r.stderr
    dump = [split_options(c)[0] for c in cmds if c[0] == "steps/prepare_dump.sh"]
    assert len(dump) == 1 and dump[0]["fs"] == "8000"


# ---------------------------------------------------------------- steps/prepare_dump.sh
def prepare_dump(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["steps/prepare_dump.sh", *map(str, args)], cwd=EGS / "mini", capture_output=True,
                          text=True, env={**env(), "PATH": f"{ROOT / 'tools' / 'venv' / 'bin'}:{os.environ['PATH']}"},
                          timeout=300)


@pytest.mark.parametrize("spec,message", [
    ("train speech_train noise_train --num 2", "no such file: {d}/data/speech_train/wav.scp (run stage 1)"),
    ("train", "no such file: {d}/data/train/wav.scp (run stage 1)"),
    ("train speech_train", "give <set>, or <set> <speech-list> <noise-list>"),
    ("../x", "'../x' is not a set name"),
])
def test_prepare_dump_checks_its_inputs_before_writing(spec, message, tmp_path):
    (tmp_path / "data").mkdir()
    r = prepare_dump(tmp_path / "data", tmp_path / "dump", spec)
    assert r.returncode != 0 and message.format(d=tmp_path) in r.stderr, r.stderr
    assert not (tmp_path / "dump").exists()


def write_wav(path: Path, fs: int, seconds: float, seed: int):
    import numpy as np
    import soundfile as sf
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (t > seconds / 3) + 0.01 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype("float32"), fs)


def test_prepare_dump_resamples_ready_made_mixtures_with_their_noise(tmp_path):
    """A set of ready-made 48 kHz mixtures (VoiceBank's kind) -> a validated 16 kHz dump dir with VAD
    labels and the noise reference; the speech/noise form with --per_condition auto is refused
    without a list of SNRs."""
    src = tmp_path / "data" / "test"
    src.mkdir(parents=True)
    for name in ("wav", "spk1", "noise1"):
        lines = []
        for i, utt in enumerate(("p1_001", "p1_002")):
            write_wav(tmp_path / "corpus" / name / f"{utt}.wav", 48000, 1.0, i)
            lines.append(f"{utt} {tmp_path}/corpus/{name}/{utt}.wav\n")
        (src / f"{name}.scp").write_text("".join(lines))
    (src / "utt2spk").write_text("p1_001 p1\np1_002 p1\n")
    (src / "spk2utt").write_text("p1 p1_001 p1_002\n")
    r = prepare_dump("--nj", 1, "--use_noise_ref", "true", tmp_path / "data", tmp_path / "dump", "test")
    assert r.returncode == 0, r.stdout + r.stderr
    d = tmp_path / "dump" / "test"
    for name in ("wav.scp", "spk1.scp", "noise1.scp", "utt2num_samples", "vad_labels.scp", "frame_shift", "utt2spk"):
        assert (d / name).is_file(), name
    assert (d / "utt2num_samples").read_text() == "p1_001 16000\np1_002 16000\n"
    assert all(f"{tmp_path}/dump/audio/test/" in ln for ln in (d / "noise1.scp").read_text().splitlines())
    assert sorted(p.name for p in (tmp_path / "dump").iterdir()) == ["audio", "test"]  # no temporary dir left
    # --audio_in_set true (VoiceBank's, LibriSpeech+DEMAND's layout): the audio in dump/<set>/wav/, twice
    for _ in range(2):
        r = prepare_dump("--nj", 1, "--audio_in_set", "true", tmp_path / "data", tmp_path / "dump3", "test")
        assert r.returncode == 0, r.stdout + r.stderr
        assert sorted(p.name for p in (tmp_path / "dump3").iterdir()) == ["test"]
        d = tmp_path / "dump3" / "test"
        for name, sub in (("wav.scp", "noisy"), ("spk1.scp", "clean"), ("vad_labels.scp", "vad")):
            assert all(Path(ln.split()[1].split(":")[0]).is_file() and f"{d}/wav/{sub}/" in ln
                       for ln in (d / name).read_text().splitlines()), name
    r = prepare_dump("--noise_types", "utt2spk", tmp_path / "data", tmp_path / "dump2",
                     "test test test --per_condition auto --snrs uniform:0:5")
    assert r.returncode != 0 and "--per_condition auto needs a list of SNRs" in r.stderr
