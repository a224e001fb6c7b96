"""A thread-per-request HTTP server (the lifecycle group's `server` row, issue 19).

    python3 thread_server.py PORT_FILE

Serves GET on 127.0.0.1 at a free port with `http.server.ThreadingHTTPServer`: every
connection gets a new thread, which handles one request (HTTP/1.0, the connection closes after
the response) and ends. Each request does a little Python work (a sum of 2000 squares) so that
the thread is short but not empty. Writes the port to PORT_FILE once it listens; SIGTERM ends
`serve_forever`, and the process exits normally (the profiler's exit path runs).
"""
import http.server
import os
import signal
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(sum(i * i for i in range(2000))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """Quiet about clients that drop their connection (wrk does at its end)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", 0), Handler)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, sys.argv[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
