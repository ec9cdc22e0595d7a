"""Tries a TLS handshake with a server and prints what happened, for checking the server's TLS policy.

Usage: python3 tls_probe_client.py PORT CA_FILE [--alpn PROTO] [--max-version TLSv1_1]
Prints 'OK <negotiated ALPN or none> <TLS version>' or 'FAILED <reason>'.
"""
import socket
import warnings
import ssl
import sys

warnings.simplefilter("ignore", DeprecationWarning)
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_verify_locations(ca)
if "--alpn" in sys.argv:
    context.set_alpn_protocols([sys.argv[sys.argv.index("--alpn") + 1]])
if "--max-version" in sys.argv:
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = getattr(ssl.TLSVersion, sys.argv[sys.argv.index("--max-version") + 1])
    context.set_ciphers("ALL:@SECLEVEL=0")
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            print(f"OK {tls.selected_alpn_protocol() or 'none'} {tls.version()}")
except (ssl.SSLError, OSError) as error:
    print(f"FAILED {error}")
