"""Evaluation results as people read them: percentages and the per-class table that eval prints."""

from __future__ import annotations


def percent(value: float | None) -> str:
    """A score in [0, 1] as a percentage with two decimals, `n/a` when there is none."""
    return "n/a" if value is None else f"{100 * value:.2f}"


def format_table(results: dict) -> str:
    """The per-class IoU and accuracy of `EvaluationResult.to_json` results, then their means."""
    rows = [f"{'class':<16}{'IoU':>8}{'accuracy':>10}"]
    for name, iou in results["per_category_iou"].items():
        accuracy = results["per_category_accuracy"][name]
        rows.append(f"{name[:15]:<16}{percent(iou):>8}{percent(accuracy):>10}")
    rows.append("-" * 34)
    rows.append(f"{'mean':<16}{percent(results['mean_iou']):>8}{percent(results['mean_accuracy']):>10}")
    rows.append(f"{'overall accuracy':<24}{percent(results['overall_accuracy']):>10}")
    return "\n".join(rows)
