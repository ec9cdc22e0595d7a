"""A TLS server that only speaks http/1.1 by ALPN, to check that a client refuses it.

Usage: python3 tls_http11_server.py CERT KEY
Prints 'PORT <n>' once listening; completes handshakes (answering nothing) until stdin closes.
"""
import socket
import ssl
import sys
import threading

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
context.set_alpn_protocols(["http/1.1"])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
print(f"PORT {listener.getsockname()[1]}", flush=True)


def serve():
    while True:
        connection, _ = listener.accept()
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass


threading.Thread(target=serve, daemon=True).start()
sys.stdin.read()
