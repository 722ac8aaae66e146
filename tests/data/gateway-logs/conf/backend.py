"""Tiny raw-socket backend for the gateway runs.
path containing /slow -> sleep 3 s then 200; containing /close -> read the request, close without a response;
anything else -> 200 "ok". Port from argv[1]."""
import socket, sys, threading, time
def handle(c):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk: return
            data += chunk
        path = data.split(b" ", 2)[1]
        if b"/close" in path:
            c.close(); return
        if b"/slow" in path:
            time.sleep(3)
        body = b"ok\n"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    except OSError:
        pass
    finally:
        try: c.close()
        except OSError: pass
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
