"""The CaDM-settings configs (experiments/cadm_reference/configs): CaDM's values, and a tiny-budget run end to end.

The smoke test trains with one config overridden to a tiny budget, then evaluates the checkpoint with
``mbmeta evaluate --protocol cadm``: the per-condition table is printed and written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mbmeta.envs
from mbmeta.cli import main
from mbmeta.commands.agent_arguments import agent_settings
from mbmeta.commands.train import build_parser
from mbmeta.envs import get_family
from mbmeta.provenance import software_versions

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "cadm_reference" / "configs"
FAMILIES = sorted(CONFIGS.glob("*.yaml"))
METHODS = {p.stem: p for p in sorted((CONFIGS / "methods").glob("*.yaml"))}
EXACT_PLANNER = CONFIGS / "planners" / "cadm_exact.yaml"  # CaDM's own planner, composed after a family config
EPISODE_STEPS = {"cadm_pendulum": 200, "cadm_cartpole": 200}  # the MuJoCo families run 1000 steps


def parse(*configs: Path, extra: tuple[str, ...] = ()):
    return build_parser().parse_args([arg for c in configs for arg in ("--config", str(c))] + list(extra))


def test_one_config_per_reference_family_and_both_methods():
    names = {parse(p).loop.family for p in FAMILIES}
    assert names == {f.name for f in mbmeta.envs.families() if f.name.startswith("cadm_")}
    assert len(names) == 6
    assert set(METHODS) == {"context", "none"}


@pytest.mark.parametrize("planner", ["default", "exact"])
@pytest.mark.parametrize("config", FAMILIES, ids=lambda p: p.stem)
@pytest.mark.parametrize("method", ["context", "none"])
def test_configs_carry_cadms_settings(config, method, planner):
    cfg = parse(config, METHODS[method], *([EXACT_PLANNER] if planner == "exact" else []))
    family = get_family(cfg.loop.family)
    # run_scripts/run_cadm_pets.py: n_itr 20 × num_rollouts 10, 5 epochs per iteration, batch 256, lr 1e-3
    assert (cfg.loop.iterations, cfg.loop.initial_episodes, cfg.loop.episodes_per_iteration) == (20, 10, 10)
    assert cfg.loop.epochs_per_iteration == 5 and cfg.data.batch_size == 256 and cfg.model.lr == 1e-3
    assert family.episode_steps == EPISODE_STEPS.get(family.name, 1000)
    # ensemble of 5 × 4×200 swish, Gaussian with log-variance in [-10, 0.5]; K = M = 10
    assert cfg.model.ensemble_size == 5 and list(cfg.model.hidden_sizes) == [200] * 4
    assert cfg.model.activation == "silu" and cfg.model.probabilistic
    assert (cfg.model.max_logvar, cfg.model.min_logvar) == (0.5, -10.0)
    assert cfg.data.context_length == cfg.data.target_length == cfg.agent.context_length == 10
    # H = 30 and planning with the env's reward; CaDM's TS-∞ with 20 particles in fp32, or by default issue 19's
    # cheaper setting of equal return (experiments/planning_cost): TS-1 with one particle, the model in bf16
    assert cfg.agent.horizon == 30 and cfg.agent.exact_reward and not cfg.model.learn_reward
    propagation = (cfg.agent.propagation, cfg.agent.particles, cfg.agent.precision)
    assert propagation == (("tsinf", 20, "fp32") if planner == "exact" else ("ts1", 1, "bf16"))
    planner = agent_settings(cfg).planner.as_config()
    if family.name == "cadm_cartpole":  # CaDM's CEM cannot plan its discrete CartPole: random shooting, 200
        assert planner["class_path"] == "random_shooting" and planner["init_args"]["population"] == 200
    else:
        cem = {"population": 200, "elites": 50, "iterations": 5, "alpha": 0.1}
        assert planner["class_path"] == "cem" and {k: planner["init_args"][k] for k in cem} == cem
    if method == "context":  # context encoder 256-128-64 -> 10, backward loss 0.5
        assert cfg.model.adaptation == "context" and cfg.model.latent_dim == 10
        assert list(cfg.model.context_hidden) == [256, 128, 64] and cfg.model.backward_loss_weight == 0.5
    else:
        assert cfg.model.adaptation == "none" and cfg.model.backward_loss_weight == 0.0


TINY = (
    "--loop.iterations", "1", "--loop.initial_episodes", "2", "--loop.episodes_per_iteration", "1",
    "--loop.num_envs", "1", "--loop.epochs_per_iteration", "1",
    "--model.ensemble_size", "2", "--model.hidden_sizes", "[16, 16]", "--model.context_hidden", "[16]",
    "--data.samples_per_epoch", "256", "--data.batch_size", "64", "--data.val_fraction", "0",
    "--agent.planner.population", "8", "--agent.planner.elites", "2", "--agent.planner.iterations", "1",
    "--agent.horizon", "3", "--agent.particles", "2",
    "--env_kwargs", '{"max_episode_steps": 30}',
)  # fmt: skip


def test_a_reference_config_trains_and_evaluates_under_cadms_protocol(tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["train", "--config", str(CONFIGS / "pendulum.yaml"), "--config", str(METHODS["context"]), *TINY]
    assert main([*argv, "--loop.run_dir", str(run_dir)]) == 0
    ckpt = run_dir / "model.ckpt"
    assert ckpt.is_file()
    assert main([*argv, "--loop.run_dir", str(run_dir)]) == 0  # the same command again: resumes, nothing left to do
    software = json.loads((run_dir / "software.json").read_text())  # the start and the resume
    assert [e["iteration"] for e in software] == [0, 1] and software[0]["versions"] == software_versions()
    capsys.readouterr()
    out = tmp_path / "eval"
    evaluate = ["evaluate", "--ckpt", str(ckpt), "--protocol", "cadm", "--protocol_episodes", "1", "--num_envs", "1"]
    assert main([*evaluate, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for row in ("| train |", "| c0 |", "| c3 |", "**moderate average**", "**extreme average**", "**test average**"):
        assert row in printed
    payload = json.loads((out / "protocol.json").read_text())
    assert payload["family"] == "cadm_pendulum" and payload["episodes_per_condition"] == 1
    assert [e["condition"] for e in payload["episodes"]] == ["train", "c0", "c1", "c2", "c3"]
    assert payload["agent"]["horizon"] == 3  # the run's agent settings, read from its config.json
    assert (out / "protocol.csv").is_file()
    assert payload["software"] == software_versions()
    assert "estimator" not in payload  # every episode run to its end, as files written before the option
    cadm = tmp_path / "eval-cadm"
    assert main([*evaluate, "--protocol_estimator", "first_finished", "--out", str(cadm)]) == 0
    assert "the first 1 episodes to finish each" in capsys.readouterr().out
    first = json.loads((cadm / "protocol.json").read_text())
    assert first["estimator"] == "first_finished"
    # Pendulum's episodes all last 200 steps: with one environment the first to finish is the one episode
    assert [e["episode_return"] for e in first["episodes"]] == [e["episode_return"] for e in payload["episodes"]]
    # a family without reference conditions is refused (the run's own family overridden), before any episode
    refused = ["evaluate", "--ckpt", str(ckpt), "--family", "pendulum", "--protocol", "cadm", "--out", str(tmp_path)]
    assert "'pendulum' has no reference-protocol test conditions" in failure_message(refused, capsys)


def failure_message(argv: list[str], capsys) -> str:
    """The error of a command that must fail: raised, or reported on stderr with a non-zero exit code."""
    try:
        code = main(argv)
    except ValueError as err:
        return str(err)
    assert code != 0
    return capsys.readouterr().err
