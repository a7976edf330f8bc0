"""The report's tables, built once from the report dictionary for both the Markdown and the HTML page."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Below this much data, peak memory over baseline is allocator noise, not a property of the backend.
MEANINGFUL_DATA_BYTES = 16 * 2**20


@dataclass
class Table:
    """A titled table with notes under it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def seconds(value: float | None) -> str:
    """``1.23 ms``, ``45.6 µs``, ``2.01 s``."""
    if value is None:
        return "n/a"
    # Below 999.5 of a unit, three significant digits stay in that unit (999.7 µs would print as
    # "1e+03 µs"): the next unit takes over there.
    if value < 999.5e-6:
        return f"{value * 1e6:.3g} µs"
    if value < 0.9995:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def rate(value: float | None) -> str:
    if value is None:
        return "n/a"
    for factor, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if value >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def mebibytes(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 2**20:,.0f} MiB" if abs(value) >= 10 * 2**20 else f"{value / 2**20:.2f} MiB"


def number(value: float | None, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def plain(value: float | None) -> str:
    """Three significant digits, without exponents for values in the thousands."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if 1000 <= abs(value) < 1e7 else f"{value:.3g}"


def ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def verdict(value: bool | None) -> str:
    return "n/a" if value is None else ("PASS" if value else "FAIL")


def timing_table(report: dict[str, Any]) -> Table:
    rows = []
    for r in report["variants"]:
        t = r["timing"]
        steady = t["steady_epoch_s"]
        rows.append(
            [
                r["variant"] + (" (fastest)" if r.get("fastest") else ""),
                r.get("device", ""),
                seconds(t["first_epoch_s"]),
                seconds(steady["median"]),
                f"{seconds(steady['min'])} – {seconds(steady['max'])} (n={steady['n']})",
                rate(t["steps_per_s"]),
                rate(t["samples_per_s"]),
                plain(t["us_per_step"]),
                ratio(r.get("speedup_vs_numpy")),
                ratio(r.get("speedup_vs_fastest")),
                seconds(t["fit_wall_s"]["median"]),
            ]
        )
    workload = report["manifest"]["workload"]
    return Table(
        "Time and throughput",
        [
            "variant",
            "device",
            "first epoch (cold)",
            "steady epoch (median)",
            "steady min – max",
            "steps/s",
            "samples/s",
            "µs/step",
            "speed-up vs NumPy",
            "vs fastest",
            "whole fit (median)",
        ],
        rows,
        [
            f"An epoch is {workload['steps_per_epoch_run']:,} steps over {workload['rows_per_epoch']:,} "
            "examples. " + report["manifest"]["timing_method"],
            "Speed-up vs NumPy is NumPy's steady epoch time over this variant's; vs fastest is the fastest "
            "variant's over this one's (1.00x is the fastest). The whole fit also converts the data, "
            "evaluates the full-data loss after every epoch and, on JAX, compiles.",
        ],
    )


def quality_table(report: dict[str, Any]) -> Table:
    rows = []
    for r in report["variants"]:
        q = r["quality"]
        rows.append(
            [
                r["variant"],
                number(r["final_loss"], ".6g"),
                number(q["r2"], ".6f"),
                number(q["w_error_max"], ".2e"),
                number(None if q["b_error"] is None else abs(q["b_error"]), ".2e"),
                number(q["ls_distance"], ".2e"),
                number(q["excess_loss"], ".2e"),
            ]
        )
    ls = report["least_squares"]
    return Table(
        "Quality",
        ["variant", "final loss", "R²", "max |w − true w|", "|b − true b|", "‖θ − θ_LS‖₂", "loss − LS loss"],
        rows,
        [
            "Final loss: the backend's own full-data loss after the last epoch. R², the distance to the "
            "closed-form least-squares solution θ_LS = (w_LS, b_LS) and the excess loss are computed on the "
            f"host in float64. The least-squares loss is {ls['loss']:.6g}.",
        ],
    )


def parity_table(report: dict[str, Any]) -> Table:
    rows = []
    for r in report["variants"]:
        p = r["parity"]
        if "max_param_diff" not in p:
            rows.append([r["variant"], "n/a", "n/a", "n/a", "n/a", p.get("note", "n/a")])
            continue
        rows.append(
            [
                r["variant"],
                f"{p['max_param_diff']:.2e}",
                f"{p['param_atol']:.2e} · (1 + |p|)",
                number(p["max_loss_rel_diff"], ".2e"),
                f"{p['loss_rtol']:.2e}",
                verdict(p["pass"]) + ("" if r.get("deterministic", True) else " (repeats differ)"),
            ]
        )
    reference = report["summary"]["reference"] or "none (NumPy was not measured)"
    return Table(
        f"Parity with {reference}",
        ["variant", "max |Δ parameter|", "tolerance", "max relative Δ loss", "tolerance", "result"],
        rows,
        [
            "Every variant trains on the same data, from the same initial parameters, in the same batch "
            "order; the differences are floating-point rounding. Tolerances from polylin.tolerances.",
        ],
    )


def memory_table(report: dict[str, Any]) -> Table:
    rows = []
    for r in report["variants"]:
        m = r.get("memory", {})
        rows.append(
            [
                r["variant"],
                mebibytes(m.get("baseline_rss_bytes")),
                mebibytes(m.get("with_data_rss_bytes")),
                mebibytes(m.get("peak_rss_bytes")),
                mebibytes(None if not m else m["peak_rss_bytes"] - m["baseline_rss_bytes"]),
                number(m.get("peak_over_baseline_per_data"), ".2f")
                if m.get("data_bytes", 0) >= MEANINGFUL_DATA_BYTES
                else "n/a (small data)",
            ]
        )
    data = report["manifest"]["data"]["bytes"]
    return Table(
        "Memory",
        ["variant", "baseline", "with data", "peak", "peak − baseline", "(peak − baseline) / data"],
        rows,
        [
            f"Data (X and y) is {mebibytes(data)}. " + report["manifest"]["memory_method"],
            f"The ratio is shown only for data of {MEANINGFUL_DATA_BYTES // 2**20} MiB or more; below that "
            "it measures allocator noise.",
        ],
    )


def absent_table(report: dict[str, Any]) -> Table:
    rows = [[s["variant"], "skipped", s["reason"]] for s in report["skipped"]]
    rows += [[f["variant"], "FAILED", f["reason"]] for f in report["failed"]]
    rows += [[n["variant"], "not applicable", n["reason"]] for n in report["not_applicable"]]
    return Table("Skipped, failed and not applicable", ["variant", "status", "reason"], rows)


def manifest_table(report: dict[str, Any]) -> Table:
    m = report["manifest"]
    h = m["host"]
    w = m["workload"]
    rows = [
        ["polylin", m["polylin_version"]],
        ["workload", f"{w['name']}: {w['description']}"],
        [
            "data",
            f"{w['n']:,} x {w['d']} {w['dtype']}, noise {w['noise']:g}, "
            f"fingerprint {m['data']['fingerprint']}"
            + ("" if m["data"]["consistent"] else " (PARTIALS SAW DIFFERENT DATA)"),
        ],
        ["rows trained on", f"{m['data']['rows_trained_on']:,}: {m['config']['plan']}"],
        ["seed / dtype", f"{m['seed']} / {m['dtype']}"],
        ["fit options", json.dumps(m["config"]["fit"], sort_keys=True)],
        ["repeats", str(m["config"]["repeats"])],
        ["requested device", str(m["config"]["requested_device"] or "cpu (default)")],
        ["backend options", json.dumps(m["config"]["backend_options"], sort_keys=True) or "{}"],
        ["CPU", f"{h['cpu_model']}; {h['logical_cpus']} logical CPUs, {h['usable_cpus']} usable"],
        ["system", f"{h['system']} {h['machine']}, Python {h['python']} ({h['python_implementation']})"],
    ]
    grouped: dict[str, list[str]] = {}
    for variant, env in m["environments"].items():
        grouped.setdefault(_environment_text(env), []).append(variant)
    for text, variants in grouped.items():
        rows.append([", ".join(variants), text])
    return Table("Manifest", ["item", "value"], rows)


def _environment_text(env: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    pools = env["thread_pools"]
    if isinstance(pools, list):
        described = sorted(f"{p['library']} ({p['api']}) {p['threads']} threads" for p in pools)
        threads = "; ".join(described) or "none"
    else:
        threads = pools
    variables = ", ".join(f"{k}={v}" for k, v in env["thread_variables"].items()) or "none set"
    label = f"environment {env['label']}: " if env.get("label") else ""
    return (
        f"{label}Python {env['python']} ({env['executable']}); {versions}; "
        f"native thread pools: {threads}; thread variables: {variables}"
    )


def tables(report: dict[str, Any]) -> list[Table]:
    """Every table of the report, in order."""
    out = []
    if report["variants"]:
        out += [timing_table(report), quality_table(report), parity_table(report), memory_table(report)]
    out += [absent_table(report), manifest_table(report)]
    return out


def headline(report: dict[str, Any]) -> list[str]:
    """A few sentences that sum the report up."""
    s = report["summary"]
    lines = [
        f"{s['measured']} variants measured, {s['skipped']} skipped, {s['failed']} failed.",
    ]
    if s["fastest"]:
        lines.append(f"Fastest steady-state epoch: {s['fastest']}.")
    if s["parity_all_pass"] is not None:
        lines.append(
            "Parity with the NumPy reference: "
            + (
                "every variant passes."
                if s["parity_all_pass"]
                else "SOME VARIANTS FAIL (see the parity table)."
            )
        )
    return lines
