# Helper processes for tests/fleet_papyrs.rs (Python 3 standard library only).
#
#   fwd FROM_NS:PORT=TO_NS:PORT ...
#       For each pair, listens on 127.0.0.1:PORT inside network namespace
#       FROM_NS and forwards every connection to 127.0.0.1:PORT inside TO_NS
#       (`-` is this process's own namespace). A socket belongs to the
#       namespace it was made in, so one process bridges them all: it enters
#       FROM_NS (setns(2) switches only the calling thread) to make the
#       listener, and each forwarding thread enters TO_NS once to connect.
#       Prints `ready` once every listener is up.
#
#   web CHAIN KEY
#       An HTTPS server on 0.0.0.0:443 (TLS 1.2+, AEAD and forward-secret
#       suites only, OpenSSL through Python's ssl module) answering every
#       GET with 200 and Strict-Transport-Security for a year, and a plain
#       HTTP server on 0.0.0.0:80 answering every GET with a 301 to https://.
#       The certificate is read once at start, as nginx does until reloaded.
#       Prints `ready` once both listen.

import ctypes
import http.server
import os
import socket
import ssl
import sys
import threading

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def enter(ns_fd):
    if libc.setns(ns_fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def ns_fd(name, home):
    return home if name == "-" else os.open("/run/netns/" + name, os.O_RDONLY)


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve_forward(listener, to_fd, port):
    enter(to_fd)
    while True:
        conn, _ = listener.accept()
        try:
            up = socket.create_connection(("127.0.0.1", port), timeout=10)
            up.settimeout(None)
        except OSError:
            conn.close()
            continue
        threading.Thread(target=pump, args=(conn, up), daemon=True).start()
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()


def fwd(pairs):
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    for pair in pairs:
        src, dst = pair.split("=")
        from_ns, from_port = src.rsplit(":", 1)
        to_ns, to_port = dst.rsplit(":", 1)
        enter(ns_fd(from_ns, home))
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(from_port)))
        listener.listen(64)
        enter(home)
        # The thread is created at home and enters TO_NS itself.
        threading.Thread(
            target=serve_forward,
            args=(listener, ns_fd(to_ns, home), int(to_port)),
            daemon=True,
        ).start()
    print("ready", flush=True)
    threading.Event().wait()


class Hsts(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        host = (self.headers.get("Host") or "papyrs.example").split(":")[0]
        self.send_response(301)
        self.send_header("Location", "https://%s%s" % (host, self.path))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def web(chain, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.load_cert_chain(chain, key)

    class Tls(http.server.ThreadingHTTPServer):
        daemon_threads = True

        # The handshake runs in the request's thread, so a probe that fails
        # it never blocks the next connection.
        def finish_request(self, request, client_address):
            try:
                request.settimeout(10)
                request = ctx.wrap_socket(request, server_side=True)
            except OSError:
                return
            self.RequestHandlerClass(request, client_address, self)

    class Plain(http.server.ThreadingHTTPServer):
        daemon_threads = True

    https = Tls(("0.0.0.0", 443), Hsts)
    plain = Plain(("0.0.0.0", 80), Redirect)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    threading.Thread(target=https.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    if sys.argv[1] == "fwd":
        fwd(sys.argv[2:])
    elif sys.argv[1] == "web":
        web(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown mode " + sys.argv[1])
