#!/usr/bin/env python3
"""A node's memory (RSS) under HTTP/2 floods: rapid reset, CONTINUATION, PING, empty DATA and an
HPACK COMPRESSION_ERROR, 200 connections of each per round, written as raw frames over TLS. Each
must be cut off (GOAWAY and closed), and RSS must level off rather than grow with the rounds.

  scripts/h2-flood-rss.py [BINARY] [ROUNDS]     (default .build/release/vitrine, 8 rounds)

Starts its own `vitrine serve --event-loops 1` (TLS on 127.0.0.1:18096, the test certificate) in
front of the bench origin (127.0.0.1:18001: ../shared/bench/peers.sh setup); Python's stdlib only.
"""
import os, socket, ssl, struct, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/vitrine")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
PORT = 18096
CERTS = os.path.join(ROOT, "Tests/Fixtures/tls")


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    """A field as a literal without indexing, with a new name (RFC 7541 §6.2.2)."""
    return bytes([0, len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def get(path, stream, end=True):
    block = literal(":method", "GET") + literal(":path", path) + literal(":scheme", "https") + literal(":authority", "shop.example")
    return frame(1, 5 if end else 4, stream, block)


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(4, 1, 0)
FLOODS = {
    "rapid reset": PREFACE + b"".join(get("/nowhere", 1 + 2 * i) + frame(3, 0, 1 + 2 * i, b"\0\0\0\x08") for i in range(500)),
    "CONTINUATION": PREFACE + frame(1, 1, 1, literal(":method", "GET")) + b"".join(frame(9, 0, 1, literal(f"x-{i}", "y" * 100)) for i in range(64)),
    "PING": PREFACE + b"".join(frame(6, 0, 0, struct.pack(">Q", i)) for i in range(1000)),
    "empty DATA": PREFACE + get("/product.json", 1, False) + b"".join(frame(0, 0, 1) for _ in range(100)),
    "COMPRESSION_ERROR": PREFACE + frame(1, 5, 1, bytes([0x3F, 0xE0, 0xFF, 0x03, 0x82])),
}


def main():
    env = dict(os.environ, VITRINE_ADMIN_TOKEN="bench-token-0123456789")
    node = subprocess.Popen(
        [BINARY, "serve", "--origin", "http://127.0.0.1:18001", "--listen", "127.0.0.1:18094", "--admin-listen", "127.0.0.1:18095",
         "--tls-listen", f"127.0.0.1:{PORT}", "--tls-certificate", f"{CERTS}/shop.pem", "--tls-key", f"{CERTS}/shop.key",
         "--event-loops", "1", "--log-level", "error"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])

    def rss():
        with open(f"/proc/{node.pid}/status") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))

    def attack(payload):
        """Sends `payload` and reads until the server closes: false when it has not within 2 s."""
        with socket.create_connection(("127.0.0.1", PORT)) as raw, context.wrap_socket(raw, server_hostname="shop.example") as tls:
            tls.sendall(payload)
            tls.settimeout(2)
            try:
                while tls.recv(65536):
                    pass
            except (socket.timeout, ssl.SSLError, ConnectionError):
                return False
            return True

    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", PORT)).close()
                break
            except OSError:
                time.sleep(0.1)
        print(f"start: RSS {rss()} MiB")
        for round in range(1, ROUNDS + 1):
            started = time.time()
            open_after = 0
            for payload in FLOODS.values():
                for _ in range(200):
                    open_after += 0 if attack(payload) else 1
            print(f"round {round}: {200 * len(FLOODS)} flood connections in {time.time() - started:.1f} s, "
                  f"{open_after} not closed by the server, RSS {rss()} MiB")
    finally:
        node.terminate()
        node.wait()


if __name__ == "__main__":
    main()
