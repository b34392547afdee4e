"""Benchmark camera scanning: generated door scenes, replayed through the real capture path.

For each resolution and condition (printed or on-screen tickets; perspective, blur, noise,
glare, low light, rotation; small and large codes) it writes a video with OpenCV (MJPG/AVI),
then for each decoder replays it exactly as `gate run --source FILE` does: capture thread ->
latest-frame slot -> decode (off the loop) -> debounce -> verify/decide -> durable SQLite commit.

Prints per condition and decoder: decode rate (frames showing a ticket whose code was read),
tickets admitted, frame-to-decision latency p50/p99 (from the capture thread's read of the frame
to the committed decision: decode + decision + commit, including any wait in the slot), decode
time per frame, and frames dropped by the latest-frame slot. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from gate.app import GateApp
from gate.camera import CameraSettings
from gate.checkin.decision import Decision
from gate.scan.camera_input import CameraSource, Decoded
from gate.scan.settings import ScanSettings
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.importer import import_bundle
from shared.bundle import BundleEvent, BundleHeader, BundleKey, BundleTicket, write_bundle
from shared.ticket import generate_private_key, key_id, public_raw, sign_ticket
from tessera_dev.synth import CONDITIONS, RESOLUTIONS, Condition, script, write_video

EVENT = 1
KEY = generate_private_key()
Decoder = Literal["zxing", "zbar"]
DECODERS: tuple[Decoder, ...] = ("zxing", "zbar")


@dataclass
class Cell:
    resolution: str
    condition: Condition
    decoder: Decoder
    tickets: int
    frames_with_code: int = 0
    frames_read: int = 0
    admitted: int = 0
    decisions: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return 100.0 * self.frames_read / self.frames_with_code if self.frames_with_code else 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def prepare_store(data_dir: Path, count: int) -> None:
    store = await Store.open(data_dir / "gate.sqlite3")
    try:
        await store.trust(KEY.public_key())
        raw = base64.urlsafe_b64encode(public_raw(KEY.public_key())).decode()
        header = BundleHeader(
            BundleEvent(EVENT, "Bench"), [BundleKey(key_id(KEY.public_key()).hex(), raw)], count
        )
        buffer = io.BytesIO()
        write_bundle(buffer, header, (BundleTicket(i, i) for i in range(1, count + 1)), KEY)
        buffer.seek(0)
        await import_bundle(store, buffer)
    finally:
        await store.close()


class LatencySink:
    """Feedback sink: records frame-to-decision latency once the decision is committed."""

    def __init__(self, source: CameraSource, cell: Cell) -> None:
        self.source, self.cell = source, cell

    async def show(self, decision: Decision) -> None:
        frame = self.source.last_frame
        if frame is not None:
            self.cell.latencies.append((time.perf_counter_ns() - frame.captured_ns) / 1e6)
        self.cell.decisions += 1
        self.cell.admitted += decision.outcome == "admit"


async def replay(
    cell: Cell, video: Path, expected: list[str | None], work: Path, fps: float
) -> None:
    data_dir = work / f"{cell.resolution}-{cell.condition.name}-{cell.decoder}"
    await prepare_store(data_dir, cell.tickets)

    def on_frame(decoded: Decoded) -> None:
        want = expected[decoded.frame.seq - 1]
        cell.decode_ms.append(decoded.decode_ms)
        if want is not None:
            cell.frames_with_code += 1
            cell.frames_read += want in decoded.texts

    source = CameraSource(
        CameraSettings(source=str(video), fps=fps),
        ScanSettings(decoder=cell.decoder),
        on_frame=on_frame,
    )
    settings = GateSettings(gate_name="Bench", data_dir=data_dir)
    await GateApp(settings, [source], [LatencySink(source, cell)]).run()
    cell.dropped = source.capture.status().dropped


def make_video(
    path: Path, cond: Condition, size: tuple[int, int], count: int, fps: float, hold: int
) -> list[str | None]:
    texts = [sign_ticket(KEY, event_id=EVENT, ticket_id=i, nonce=i) for i in range(1, count + 1)]
    expected: list[str | None] = []

    def frames():  # type: ignore[no-untyped-def]
        for shot in script(texts, cond, size, hold=hold, gap=1, seed=hash(cond.name) & 0xFFFF):
            expected.append(shot.expected)
            yield shot.image

    write_video(path, frames(), fps)
    return expected


def print_table(cells: list[Cell]) -> None:
    head = (
        f"{'resolution':<10} {'condition':<12} {'decoder':<6} {'frames':>6} {'decode%':>8} "
        f"{'admitted':>9} {'f2d p50':>8} {'f2d p99':>8} {'dec p50':>8} {'dec p99':>8} "
        f"{'dropped':>7}"
    )
    print(head)
    print("-" * len(head))
    for c in cells:
        print(
            f"{c.resolution:<10} {c.condition.name:<12} {c.decoder:<6} {c.frames_with_code:>6} "
            f"{c.rate:>7.1f}% {c.admitted:>4}/{c.tickets:<4} {pct(c.latencies, 50):>6.1f}ms "
            f"{pct(c.latencies, 99):>6.1f}ms {pct(c.decode_ms, 50):>6.1f}ms "
            f"{pct(c.decode_ms, 99):>6.1f}ms {c.dropped:>7}"
        )


def print_summary(cells: list[Cell]) -> None:
    print("\nsummary (moderate = every condition except 'harsh'):")
    for res in dict.fromkeys(c.resolution for c in cells):
        for dec in dict.fromkeys(c.decoder for c in cells):
            mine = [c for c in cells if c.resolution == res and c.decoder == dec]
            moderate = [c for c in mine if c.condition.moderate]
            read = sum(c.frames_read for c in moderate)
            shown = sum(c.frames_with_code for c in moderate)
            lat = [v for c in mine for v in c.latencies]
            worst = min(moderate, key=lambda c: c.rate)
            print(
                f"  {res:<10} {dec:<6} decode rate {100 * read / max(1, shown):5.1f}% "
                f"(worst {worst.condition.name} {worst.rate:.1f}%)  f2d p50 {pct(lat, 50):.1f} ms"
                f"  p99 {pct(lat, 99):.1f} ms  mean decode "
                f"{statistics.fmean(v for c in mine for v in c.decode_ms):.1f} ms  "
                f"dropped {sum(c.dropped for c in mine)}  decisions {len(lat)}"
            )


async def bench(args: argparse.Namespace, work: Path) -> None:
    resolutions = ["1280x720"] if args.quick else list(RESOLUTIONS)
    conditions = [c for c in CONDITIONS if not args.conditions or c.name in args.conditions]
    cells: list[Cell] = []
    jobs = [(r, c) for r in resolutions for c in conditions]
    for res, cond in tqdm(jobs, desc="scenes", file=sys.stderr):
        video = work / f"{res}-{cond.name}.avi"
        expected = make_video(video, cond, RESOLUTIONS[res], args.tickets, args.fps, args.hold)
        for decoder in args.decoders:
            cell = Cell(res, cond, decoder, args.tickets)
            await replay(cell, video, expected, work, args.fps)
            cells.append(cell)
    print(
        f"\n{args.tickets} tickets per scene, each held {args.hold} frames at {args.fps:g} fps, "
        f"MJPG/AVI replayed through the capture path; f2d = frame read -> committed decision"
    )
    print_table(cells)
    print_summary(cells)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench_scan", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1280x720 only, 12 tickets a scene")
    parser.add_argument("--tickets", type=int, help="tickets per scene (default 40; quick 12)")
    parser.add_argument("--hold", type=int, default=3, help="frames each ticket is in view")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate (replay pace)")
    parser.add_argument("--decoders", nargs="+", default=list(DECODERS), choices=DECODERS)
    parser.add_argument(
        "--conditions",
        nargs="+",
        help="only these conditions",
        choices=[c.name for c in CONDITIONS],
    )
    args = parser.parse_args()
    args.tickets = args.tickets or (12 if args.quick else 40)
    logging.getLogger("gate").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench_scan-") as tmp:
        asyncio.run(bench(args, Path(tmp)))


if __name__ == "__main__":
    main()
