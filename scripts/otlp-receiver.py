"""An OTLP/HTTP metrics receiver for the tests (scripts/backends.js starts it, in a virtual
environment holding PyPI's opentelemetry-proto): it decodes every request with the official
definitions (the package's generated messages), protobuf with ParseFromString and OTLP/JSON with
protobuf's own JSON parser (strict: an unknown field or a wrong type is an error), and prints each
as one JSON line on stdout, the request written back by MessageToDict (lowerCamelCase, 64-bit
integers as strings), the same whichever protocol it came in.

Lines on stdout: first {"port": N}; then per request {"path", "contentType", "contentEncoding"
(a gzip body is decompressed first), "at" (epoch seconds), "status", "request"} or, when the body does not decode, {"path", "contentType", "status": 400, "error"}.
Commands on stdin, one JSON object per line, each answered by {"ok": true}:
  {"status": 503, "times": 2, "retryAfter": 1}  the next 2 requests get 503 (Retry-After: 1)
  {"partial": 3, "message": "why"}               the next 2xx answer is a partial success
The end of stdin stops it.
"""

import gzip
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as service

lock = threading.Lock()
answers = []  # [status, retry_after] for the next requests
partial = []  # [rejected, message] for the next 2xx answers


def emit(line):
    with lock:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        encoding = self.headers.get("Content-Encoding", "")
        is_json = content_type.startswith("application/json")
        request = service.ExportMetricsServiceRequest()
        line = {"path": self.path, "contentType": content_type, "contentEncoding": encoding, "at": time.time()}
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding:
                raise ValueError("unexpected Content-Encoding " + encoding)
            if is_json:
                json_format.Parse(body.decode("utf-8"), request)
            elif content_type.startswith("application/x-protobuf"):
                request.ParseFromString(body)
            else:
                raise ValueError("unexpected Content-Type " + content_type)
            line["request"] = json_format.MessageToDict(request)
            status, retry_after = 200, None
            with lock:
                if answers:
                    status, retry_after = answers.pop(0)
        except Exception as error:  # anything that does not decode is the sender's bug
            line["error"] = repr(error)
            status, retry_after = 400, None
        line["status"] = status
        emit(line)
        answer = service.ExportMetricsServiceResponse()
        if status == 200:
            with lock:
                if partial:
                    rejected, message = partial.pop(0)
                    answer.partial_success.rejected_data_points = rejected
                    answer.partial_success.error_message = message
        if is_json:
            out = json_format.MessageToJson(answer).encode("utf-8")
        else:
            out = answer.SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if is_json else "application/x-protobuf")
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emit({"port": server.server_address[1]})
    for text in sys.stdin:
        if not text.strip():
            continue
        command = json.loads(text)
        with lock:
            if "status" in command:
                for _ in range(command.get("times", 1)):
                    answers.append([command["status"], command.get("retryAfter")])
            if "partial" in command:
                partial.append([command["partial"], command.get("message", "")])
        emit({"ok": True})
    server.shutdown()


if __name__ == "__main__":
    main()
