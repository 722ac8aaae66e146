#!/bin/sh
# Requests against the Apache run (127.0.0.1:18082); 1 s apart.
B=http://127.0.0.1:18082
c() { curl -s -o /dev/null -w "%{http_code} $*\n" -A 'curl/7.88.1' "$@"; sleep 1; }
c $B/api/orders/42                                        # 200 via mod_proxy
c -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' $B/api/slow/report   # timeout=1 -> 504
c $B/api/close/session                                    # backend closes without a response -> 502
c $B/dead/health                                          # connection refused -> 503
c $B/dead/health                                          # worker in error state -> 503
c $B/admin/users                                          # AH01630 -> 403
c -u bob:secret $B/private/x                              # AH01618 -> 401
c -u alice:wrong $B/private/x                             # AH01617 -> 401
c -u alice:secret $B/private/x                            # 200
c $B/files/missing.txt                                    # AH00128 -> 404
mkdir -p /tmp/gw/apache/htdocs/files/emptydir
c $B/files/emptydir/                                      # AH01276 -> 403
c -X POST --data-binary 'this body is longer than ten bytes' $B/upload   # LimitRequestBody -> 413
c -X POST --data-binary 'this body is longer than ten bytes' $B/files/a.txt  # LimitRequestBody on a static file -> 413
