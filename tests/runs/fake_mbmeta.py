"""A stand-in for ``python -m mbmeta`` in the runner's tests: ``train`` and ``evaluate`` write files of the real
layout in milliseconds, so scheduling, stamps, resuming and failure handling are tested without torch.

- ``train``: writes ``<run_dir>/model.ckpt`` (its bytes depend on the seed and the configs' contents) and exits 1
  if the run directory's name is in ``FAKE_FAIL`` (comma-separated). With ``FAKE_KEEP`` (iterations, e.g. ``1,2``)
  it also writes those kept checkpoints and records them in ``state.json`` as the loop does, each fitted on
  ``1000 * iteration`` transitions; with ``FAKE_KEEP_FINAL=1`` the last of them is a copy of ``model.ckpt`` (as the
  real loop's last kept checkpoint is the final model).
- ``evaluate``: writes ``<out>/results.json`` with two episodes (tasks mass 0.2 and 1.5) whose return is
  ``FAKE_BASE[label] + 10 * training seed + eval seed`` (the training seed read from the checkpoint). With
  ``--protocol cadm`` it writes ``<out>/protocol.json`` instead: ``--protocol_episodes`` (default 10) episodes per
  condition, episode i returning ``FAKE_BASE[label] + FAKE_SLOPE[label] (default 10) * training seed + eval seed +
  100 * iteration (kept checkpoints; 0 for model.ckpt) + OFFSET[condition] + i``. With ``--policy`` (a reference
  policy: no checkpoint) the ``--policy_seed`` stands for the training seed.
Every call appends ``<start> <end> <argv>`` to ``FAKE_CALLS`` and sleeps ``FAKE_SLEEP`` seconds.
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

# condition -> (group, return offset) of the fake protocol
CONDITIONS = {"train": ("train", 0), "c0": ("extreme", -40), "c1": ("moderate", -10), "c2": ("moderate", -20),
              "c3": ("extreme", -30)}  # fmt: skip


def option(argv, name):
    return argv[argv.index(name) + 1]


def main(argv):
    start = time.time()
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    command = argv[0]
    if command == "train":
        run_dir = Path(option(argv, "--loop.run_dir"))
        run_dir.mkdir(parents=True, exist_ok=True)
        configs = [Path(argv[i + 1]).read_text() for i, a in enumerate(argv) if a == "--config"]
        if run_dir.name in os.environ.get("FAKE_FAIL", "").split(","):
            print("fake train: failing as asked")
            code = 1
        else:
            seed = int(option(argv, "--loop.seed"))
            (run_dir / "model.ckpt").write_text(json.dumps({"seed": seed, "configs": configs}))
            kept = []
            iterations = [int(i) for i in os.environ.get("FAKE_KEEP", "").split(",") if i]
            for iteration in iterations:
                path = run_dir / "checkpoints" / f"iteration_{iteration:03d}.ckpt"
                path.parent.mkdir(exist_ok=True)
                path.write_text(json.dumps({"seed": seed, "configs": configs, "iteration": iteration}))
                if os.environ.get("FAKE_KEEP_FINAL") and iteration == iterations[-1]:
                    path.write_bytes((run_dir / "model.ckpt").read_bytes())
                sha = hashlib.sha256(path.read_bytes()).hexdigest()
                record = {"iteration": iteration, "checkpoint": f"checkpoints/{path.name}", "sha256": sha}
                kept.append({**record, "episodes": 10 * iteration, "transitions": 1000 * iteration})
            (run_dir / "state.json").write_text(json.dumps({"iteration": 1, **({"kept": kept} if kept else {})}))
            code = 0
    elif command == "evaluate":
        if "--policy" in argv:
            model = {"seed": int(option(argv, "--policy_seed"))}
        else:
            model = json.loads(Path(option(argv, "--ckpt")).read_text())
        label, eval_seed = option(argv, "--labels"), int(option(argv, "--seed"))
        base = json.loads(os.environ.get("FAKE_BASE", "{}")).get(label, 0.0)
        out = Path(option(argv, "--out"))
        out.mkdir(parents=True, exist_ok=True)
        if "--protocol" in argv:
            slope = json.loads(os.environ.get("FAKE_SLOPE", "{}")).get(label, 10.0)
            value = base + slope * model["seed"] + eval_seed + 100 * model.get("iteration", 0)
            n = int(option(argv, "--protocol_episodes")) if "--protocol_episodes" in argv else 10
            rows = [
                {"condition": name, "group": group, "method": label, "task_id": i, "task": {"mass": 1.0},
                 "seed": eval_seed, "episode_return": value + offset + i, "length": 200, "terminated": False}
                for name, (group, offset) in CONDITIONS.items() for i in range(n)
            ]  # fmt: skip
            payload = {"protocol": "cadm", "family": "cadm_pendulum", "episodes": rows}
            (out / "protocol.json").write_text(json.dumps(payload))
            with open(os.environ["FAKE_CALLS"], "a") as f:
                f.write(f"{start} {time.time()} {' '.join(argv)}\n")
            return 0
        value = base + 10 * model["seed"] + eval_seed
        episodes = [
            {"method": label, "task_id": i, "task": {"mass": mass}, "seed": eval_seed, "episode_return": value + i,
             "length": 200, "terminated": False, "success": None}
            for i, mass in enumerate((0.2, 1.5))
        ]  # fmt: skip
        (out / "results.json").write_text(json.dumps({"episodes": episodes, "family": "pendulum", "split": "test"}))
        code = 0
    else:
        code = 2
    with open(os.environ["FAKE_CALLS"], "a") as f:
        f.write(f"{start} {time.time()} {' '.join(argv)}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
