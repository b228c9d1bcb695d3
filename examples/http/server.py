#!/usr/bin/env python3
# A Flotilla `http` handler: a small web server the worker POSTs each job's payload to, answering with the result.
# Run: python3 examples/http/server.py [PORT]   (default 8787, or env PORT; serves POST http://127.0.0.1:PORT/jobs)
#
# Registered as job type py_http in examples/flotilla.toml. {"text": "hi"} answers 200 with
# {"upper": "HI", "length": 2, "attempt": 1}: a 2xx body is the job's result. Other payloads
# show how the worker reads a failure:
#   {"status": 503, "retry_after": 1}  503 with Retry-After: 1, retried after that many seconds
#   {"status": 422}                    a 4xx (but 408 and 429) gives up: the job is dead at once
#   {"fail": "message"}                500 with the message, retried with backoff like any 5xx
# Needs only the standard library.
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JobHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/jobs":
            return self.answer(404, {"error": f"no such path {self.path}"})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except ValueError as e:
            return self.answer(400, {"error": f"payload is not JSON: {e}"})
        if not isinstance(payload, dict):
            payload = {}  # an empty payload arrives as JSON null

        if "status" in payload:
            headers = {}
            if "retry_after" in payload:
                headers["Retry-After"] = str(payload["retry_after"])
            return self.answer(int(payload["status"]), {"error": "asked for by the payload"}, headers)
        if "fail" in payload:
            return self.answer(500, {"error": str(payload["fail"])})

        text = str(payload.get("text", ""))
        attempt = self.headers.get("X-Flotilla-Attempt")  # sent by the worker with each POST
        self.answer(200, {
            "upper": text.upper(),
            "length": len(text),
            "attempt": int(attempt) if attempt else None,
        })

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def main():
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8787"))
    server = ThreadingHTTPServer(("127.0.0.1", port), JobHandler)
    # Port 0 picks a free port; print the real one, and flush so a waiting script sees it.
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/jobs", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
