"""A tiny HTTP server for the HTTPLIKE test agent: GET /N answers N bytes.

Run as: python sizeserver.py ADDRESS PORT.  Logs one line per request.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            size = int(self.path.strip("/") or 0)
        except ValueError:
            self.send_error(400, "path must be /SIZE")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk = b"x" * 65536
        left = size
        while left > 0:
            self.wfile.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)

    def log_message(self, fmt, *args):
        # One write of the whole line: requests are served by threads, and
        # print() writes its arguments one by one, so two requests' lines
        # could interleave ("served served /5069 /7266 to to ...") and the
        # test reading the log would miss a size that was served.
        os.write(1, f"served {self.path} to {self.client_address[0]}\n".encode())


if __name__ == "__main__":
    ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
