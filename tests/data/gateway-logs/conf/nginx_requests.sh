#!/bin/sh
# Requests against the nginx run (127.0.0.1:18080). Each step sleeps 1 s so error/access lines separate by second.
B=http://127.0.0.1:18080
c() { curl -s -o /dev/null -w "%{http_code} $*\n" -H 'Host: gw.test' -A 'curl/7.88.1' "$@"; sleep 1; }
c $B/api/orders/42                                   # 200 via upstream
c $B/api/slow/report                                 # upstream timed out -> 504
c $B/api/close/session                               # upstream prematurely closed -> 502
c $B/dead/health                                     # connect() failed (111) -> 502
c $B/pair/a                                          # two connect() failures -> 502
c $B/pair/b                                          # no live upstreams -> 502
c $B/limited/x; c $B/limited/x                       # 200 then limiting requests (error)
c $B/limited-warn/x                                  # limiting requests (warn)
c $B/limited-notice/x                                # limiting requests (notice)
c $B/limited-info/x                                  # limiting requests (info)
curl -s -o /dev/null -H 'Host: gw.test' $B/delayed/1 & curl -s -o /dev/null -w "%{http_code} delayed\n" -H 'Host: gw.test' -A 'curl/7.88.1' $B/delayed/2; wait; sleep 1
curl -s -o /dev/null -w "%{http_code} conn-slow\n" -H 'Host: gw.test' -A 'curl/7.88.1' $B/conn/slow & sleep 0.5; c $B/conn/second; wait   # limiting connections
c -X POST --data-binary 'this body is longer than ten bytes' $B/upload  # 413 too large body
c $B/admin/users                                      # access forbidden by rule -> 403
c -u bob:secret $B/private/x                          # user "bob" was not found
c -u alice:wrong $B/private/x                         # user "alice": password mismatch
c -u alice:secret $B/private/x                        # 200
c $B/files/missing.txt                                # open() failed (2) -> 404
c $B/files/emptydir/                                  # directory index ... is forbidden -> 403
