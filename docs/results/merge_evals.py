"""Merge several ``mbmeta evaluate`` outputs into one ``results.json`` / ``results.csv`` and prediction-error plot.

Valid only when every input was evaluated with the same ``--seed``, tasks and ``--agent.*`` flags (evaluation is
then deterministic per model, so separate runs equal one joint run).

Usage: ``python docs/results/merge_evals.py OUT_DIR TITLE A/results.json B/results.json ...``
"""

import json
import sys

import numpy as np

from mbmeta.training.evaluation import EpisodeRecord, plot_prediction_error, write_results


def main(out: str, title: str, sources: list[str]) -> None:
    """Concatenate the episode records and prediction-error curves of ``sources`` and write them to ``out``."""
    records, curves, ckpts, family, split = [], {}, [], None, None
    for source in sources:
        with open(source) as f:
            result = json.load(f)
        if family not in (None, result["family"]) or split not in (None, result["split"]):
            raise ValueError(f"{source} evaluates {result['family']}/{result['split']}, not {family}/{split}")
        family, split = result["family"], result["split"]
        records += [EpisodeRecord(**episode) for episode in result["episodes"]]
        curves.update({method: np.array(curve) for method, curve in result["prediction_error"].items()})
        ckpts += result["ckpt"]
    extra = {"prediction_error": curves, "family": family, "split": split, "ckpt": ckpts, "merged_from": sources}
    write_results(records, out, extra=extra)
    plot_prediction_error(curves, f"{out}/prediction_error.png", title=title)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
