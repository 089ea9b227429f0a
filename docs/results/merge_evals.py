"""Merge several ``mbmeta evaluate`` outputs into one ``results.json`` / ``results.csv`` and prediction-error plot.

Valid only when every input was evaluated with the same ``--seed``, tasks and ``--agent.*`` flags (evaluation is
then deterministic per model, so separate runs equal one joint run).

Usage: ``python docs/results/merge_evals.py OUT_DIR TITLE A/results.json B/results.json ...``
"""

import json
import sys
from dataclasses import asdict

import numpy as np

from mbmeta.control.settings import AgentSettings
from mbmeta.evaluation.episodes import EpisodeRecord
from mbmeta.evaluation.reports import plot_prediction_error, write_results


def main(out: str, title: str, sources: list[str]) -> None:
    """Concatenate the episode records and prediction-error curves of ``sources`` and write them to ``out``."""
    records, curves, ckpts, family, split = [], {}, [], None, None
    per_method: dict[str, dict] = {"prediction_error_by_task": {}, "plan_stats": {}}  # method -> value, when recorded
    agents = []
    for source in sources:
        with open(source) as f:
            result = json.load(f)
        if family not in (None, result["family"]) or split not in (None, result["split"]):
            raise ValueError(f"{source} evaluates {result['family']}/{result['split']}, not {family}/{split}")
        family, split = result["family"], result["split"]
        records += [EpisodeRecord(**episode) for episode in result["episodes"]]
        curves.update({method: np.array(curve) for method, curve in result["prediction_error"].items()})
        ckpts += result["ckpt"]
        for key, merged in per_method.items():
            merged.update(result.get(key, {}))
        if "agent" in result:  # settings added later are absent from older outputs: compare with defaults filled in
            agent = {**asdict(AgentSettings()), **result["agent"]}
            if agent not in agents:
                agents.append(agent)
    if len(agents) > 1:
        raise ValueError(f"the sources were evaluated with different agent settings: {agents}")
    extra = {"prediction_error": curves, "family": family, "split": split, "ckpt": ckpts, "merged_from": sources}
    extra.update({key: merged for key, merged in per_method.items() if merged})
    if agents:
        extra["agent"] = agents[0]
    write_results(records, out, extra=extra)
    plot_prediction_error(curves, f"{out}/prediction_error.png", title=title)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
