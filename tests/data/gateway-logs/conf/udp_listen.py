"""Capture UDP datagrams verbatim: one repr() per line (argv[1]=port, argv[2]=outfile)."""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1])))
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        d, _ = s.recvfrom(65535)
        f.write(d + b"\n")
