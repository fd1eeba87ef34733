#!/usr/bin/python3
"""An HTTP/2 upstream over TLS for the tests, for what nginx cannot do. On a connection that
has answered before, a request to /kill... is read whole and the connection closed without
an answer (no GOAWAY), and one to /goaway... gets GOAWAY naming the streams before it as the
last processed, then TLS close_notify, with the TCP connection left open for 30 s. A request
to /refuse... is reset with REFUSED_STREAM as its head arrives (logged "REFUSED METHOD
PATH"); one to /reset... is answered 200 with content-length 10, 3 bytes of body, then
RST_STREAM(NO_ERROR). Every request read is logged as "METHOD PATH BODYLEN" to LOG. Any
other request is answered 200 with "METHOD BODYLEN".
usage: h2_fault.py PORT CERT KEY LOG"""
import signal, socket, ssl, sys, threading, time
import h2.config, h2.connection, h2.errors, h2.events, h2.exceptions

# A parent may hand down SIGTERM blocked: take it back, so the test can stop this server.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

port, cert, key, logpath = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
log = open(logpath, "a", buffering=1)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
tls.set_alpn_protocols(["h2"])


def serve(raw):
    try:
        sock = tls.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        return
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    heads, bodies, answered = {}, {}, 0
    try:
        for _ in range(100000):
            data = sock.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    head = {k.decode(): v.decode() for k, v in event.headers}
                    if head[":path"].startswith("/refuse"):
                        log.write("REFUSED %s %s\n" % (head[":method"], head[":path"]))
                        conn.reset_stream(event.stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                        continue
                    heads[event.stream_id] = head
                    bodies[event.stream_id] = b""
                elif isinstance(event, h2.events.DataReceived):
                    if event.stream_id not in bodies:
                        continue
                    bodies[event.stream_id] += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    sid = event.stream_id
                    if sid not in heads:
                        continue
                    method, path = heads[sid][":method"], heads[sid][":path"]
                    log.write("%s %s %d\n" % (method, path, len(bodies[sid])))
                    if path.startswith("/kill") and answered > 0:
                        sock.close()
                        return
                    if path.startswith("/goaway") and answered > 0:
                        conn.close_connection(last_stream_id=sid - 2)
                        sock.sendall(conn.data_to_send())
                        try:
                            sock.unwrap()
                        except (OSError, ssl.SSLError):
                            pass
                        time.sleep(30)
                        raw.close()
                        return
                    answered += 1
                    if path.startswith("/reset"):
                        conn.send_headers(sid, [(":status", "200"), ("content-length", "10")])
                        conn.send_data(sid, b"abc")
                        conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.NO_ERROR)
                        continue
                    body = ("%s %d" % (method, len(bodies[sid]))).encode()
                    conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
                    conn.send_data(sid, body, end_stream=True)
            sock.sendall(conn.data_to_send())
    except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
        return


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(64)
print("listening", flush=True)
started = time.time()
while time.time() - started < 600:
    client, _ = server.accept()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(client,), daemon=True).start()
