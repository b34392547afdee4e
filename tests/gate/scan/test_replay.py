"""Replayed videos through the whole gate: capture -> decode -> debounce -> decide -> commit."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from gate.app import GateApp
from gate.camera import CameraSettings
from gate.checkin.decision import Decision
from gate.scan.camera_input import CameraSource
from tessera_dev.synth import CONDITIONS, script, write_video
from tests.gate.feedback.realgate import RealGate, make_gate, tickets

CLEAN = CONDITIONS[0]
BIN = Path(sys.executable).parent


class Collected:
    """A feedback sink that keeps what it was shown (the page and hooks get the same)."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []

    async def show(self, decision: Decision) -> None:
        self.decisions.append(decision)


async def _door_video(tmp_path: Path, count: int) -> tuple[RealGate, Path, list[str]]:
    gate = await make_gate(tmp_path, tickets(count))
    await gate.store.close()
    texts = [gate.code(1001 + i) for i in range(count)]
    texts += ["https://example.org/party", gate.code(4242)]  # not a ticket; not on the list
    video = tmp_path / "door.avi"
    write_video(video, (s.image for s in script(texts, CLEAN, (640, 480), hold=6, gap=2)), 30)
    return gate, video, texts


async def test_video_with_n_tickets_yields_exactly_n_decisions(tmp_path: Path) -> None:
    gate, video, _ = await _door_video(tmp_path, 5)
    sink = Collected()
    source = CameraSource(CameraSettings(source=str(video)), gate.settings.scan)
    await GateApp(gate.settings, [source], [sink]).run()

    got = [(d.outcome, d.ticket_id, d.reason and d.reason.value) for d in sink.decisions]
    assert got == [
        *[("admit", 1001 + i, None) for i in range(5)],
        ("deny", None, "not_a_ticket"),
        ("deny", 4242, "unknown_ticket"),
    ]
    assert sink.decisions[5].message == "Not a ticket"
    assert all(d.via == "camera" and d.seq for d in sink.decisions)
    # frame-to-decision: from the capture of the frame to the decision shown, never less than
    # the pipeline's own part of it
    assert all(d.frame_ms is not None and d.frame_ms >= d.latency_ms for d in sink.decisions)
    assert source.capture.status().state.value == "ended"


async def test_a_held_code_in_an_image_folder_is_one_scan(tmp_path: Path) -> None:
    gate = await make_gate(tmp_path, tickets(1))
    await gate.store.close()
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, shot in enumerate(script([gate.code(1001)], CLEAN, (640, 480), hold=12, gap=0)):
        cv2.imwrite(str(folder / f"{i:04}.png"), shot.image)
    sink = Collected()
    settings = CameraSettings(source=str(folder), fps=30)
    await GateApp(gate.settings, [CameraSource(settings, gate.settings.scan)], [sink]).run()
    assert [d.outcome for d in sink.decisions] == ["admit"]


async def test_gate_run_replays_a_file_and_prints_decisions(tmp_path: Path) -> None:
    gate, video, _ = await _door_video(tmp_path, 3)
    env = {
        **os.environ,
        "GATE_DATA_DIR": str(gate.settings.data_dir),
        "GATE_NAME": "Gate B",
        "GATE_DISPLAY_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "gate"),
        "run",
        "--source",
        str(video),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert [(d["decision"], d["ticket_id"]) for d in lines] == [
        ("admit", 1001),
        ("admit", 1002),
        ("admit", 1003),
        ("deny", None),
        ("deny", 4242),
    ]
    assert all(d["frame_ms"] > 0 for d in lines)  # the JSON line carries it too
