"""A scripted operator for agent/image/lab/run-lab.sh: the callback endpoints of the wire
contract over HTTPS (a throwaway CA made by the script), and the target at /target. Prints one
line per request (POST bodies except the report's)."""
import http.server
import ssl
import sys

port, target, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
BOOTSTRAP = b"#cloud-config\nstages: {}\n# beskar7 lab bootstrap\n"
polls = {"n": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        print("GET", self.path, flush=True)
        if self.path.startswith("/api/v1/bootstrap/"):
            polls["n"] += 1  # not ready the first time: the agent polls
            return self.reply(404) if polls["n"] < 2 else self.reply(200, BOOTSTRAP)
        if self.path == "/target":
            with open(target, "rb") as f:
                return self.reply(200, f.read())
        self.reply(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        shown = f"({len(body)} bytes)" if "/inspection/" in self.path else body.decode(errors="replace")
        print("POST", self.path, shown, flush=True)
        self.reply(202, b'{"status":"accepted"}')


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
