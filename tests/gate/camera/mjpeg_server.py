"""A real HTTP MJPEG server (multipart/x-mixed-replace) in a thread, for stream-URL tests.

After ``frames`` frames it either closes the connection (``then="close"``) or keeps it open
without sending anything more (``then="stall"``), which is what a hung IP camera does.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


class MjpegServer:
    def __init__(self, frame: np.ndarray, frames: int, then: str = "close") -> None:
        ok, jpeg = cv2.imencode(".jpg", frame)
        assert ok
        self.jpeg = jpeg.tobytes()
        self.frames = frames
        self.then = then
        self.connections = 0
        self.release = threading.Event()
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="test-mjpeg", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"

    def __enter__(self) -> MjpegServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for _ in range(outer.frames):
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(outer.jpeg)}\r\n\r\n".encode())
                        self.wfile.write(outer.jpeg + b"\r\n")
                        self.wfile.flush()
                        if outer.release.wait(0.03):
                            return
                    if outer.then == "stall":
                        outer.release.wait(30)
                except (TimeoutError, BrokenPipeError, ConnectionResetError):
                    return

        return Handler
