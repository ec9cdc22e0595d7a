"""A TLS HTTP/2 client (Python h2) that opens a connection, waits, and reports how the server ended it.

Usage: python3 tls_h2_close_probe_client.py PORT CA_FILE
Prints 'READY' once the server's SETTINGS arrived, 'GOAWAY <code>' for each GOAWAY, and finally one of
'END close_notify' (TLS ended with close_notify), 'END eof_without_close_notify' (the bytes just stopped:
a truncated TLS connection) or 'END error <reason>'.
"""
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions

port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.load_verify_locations(ca)
context.set_alpn_protocols(["h2"])
raw = socket.create_connection(("127.0.0.1", port), timeout=60)
# suppress_ragged_eofs=False: an EOF without close_notify raises SSLEOFError instead of reading as b"".
sock = context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
ready = False
while True:
    try:
        data = sock.recv(65536)
    except ssl.SSLEOFError:
        print("END eof_without_close_notify", flush=True)
        break
    except (ssl.SSLError, OSError) as error:
        print(f"END error {error}", flush=True)
        break
    if not data:
        print("END close_notify", flush=True)
        break
    if conn is None:
        continue  # HTTP/2 is over for h2; only how TLS ends matters now
    try:
        events = conn.receive_data(data)
    except h2.exceptions.ProtocolError:
        # h2 accepts nothing but GOAWAY after a GOAWAY (the server's drain PING follows its first
        # GOAWAY): stop parsing HTTP/2 and keep reading to see how TLS ends.
        conn = None
        continue
    for event in events:
        if isinstance(event, h2.events.RemoteSettingsChanged) and not ready:
            ready = True
            print("READY", flush=True)
        elif isinstance(event, h2.events.ConnectionTerminated):
            print(f"GOAWAY {int(event.error_code)}", flush=True)
    out = conn.data_to_send()
    if out:
        try:
            sock.sendall(out)
        except OSError:
            pass
