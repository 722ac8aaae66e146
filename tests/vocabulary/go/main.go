// Go stdlib + Debian-packaged gorilla/mux, chi, golang-jwt v4, grpc-go: make them fail for real on 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/go-chi/chi"
	"github.com/golang-jwt/jwt"
	"github.com/gorilla/mux"
	"google.golang.org/grpc"
)

func emit(lib, ver, label, text, how, ranAs string) {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\t", " "), "\n", " ")
	if ranAs == "" {
		ranAs = lib + "@" + ver
	}
	fmt.Printf("%s\t%s\t%s\t%s\tran %s (%s)\n", lib, ver, label, text, ranAs, how)
}

func body(h http.Handler, method, path string, payload string) (int, string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.TrimRight(string(b), "\n")
}

func main() {
	gov := strings.TrimPrefix(runtime.Version(), "go")
	deb := func(p string) string { b, _ := os.ReadFile("debver-" + p) /* the Debian package version, written by `dpkg-query -W -f='${Version}'` beside this file */; return strings.TrimSpace(string(b)) }
	// net/http routing
	m := http.NewServeMux()
	m.HandleFunc("/only", func(w http.ResponseWriter, r *http.Request) {})
	st, b := body(m, "GET", "/x", "")
	emit("Go net/http", gov, "routing", b, fmt.Sprintf("http.ServeMux GET /x; HTTP %d body", st), "go@"+gov)
	// gorilla/mux
	r := mux.NewRouter()
	r.HandleFunc("/only", func(w http.ResponseWriter, r *http.Request) {}).Methods("POST")
	st, b = body(r, "GET", "/x", "")
	emit("gorilla/mux", deb("mux"), "routing", b, fmt.Sprintf("mux.Router GET /x; HTTP %d body (Debian golang-github-gorilla-mux-dev)", st), "")
	st, b = body(r, "GET", "/only", "")
	emit("gorilla/mux", deb("mux"), "routing", fmt.Sprintf("%s", b), fmt.Sprintf("mux.Router GET /only (route is POST-only); HTTP %d, body is empty", st), "")
	// chi
	c := chi.NewRouter()
	c.Post("/only", func(w http.ResponseWriter, r *http.Request) {})
	st, b = body(c, "GET", "/x", "")
	emit("chi", deb("chi"), "routing", b, fmt.Sprintf("chi.NewRouter GET /x; HTTP %d body (Debian golang-github-go-chi-chi-dev)", st), "")
	st, b = body(c, "GET", "/only", "")
	emit("chi", deb("chi"), "routing", b, fmt.Sprintf("chi.NewRouter GET /only (route is POST-only); HTTP %d body", st), "")
	// encoding/json
	type T struct {
		X int `json:"x"`
	}
	for _, in := range []string{`{"x":"abc"}`, `{"x":1,}`, `{"x":`, `[1]`, `{"x":1.5}`} {
		var t T
		err := json.Unmarshal([]byte(in), &t)
		emit("Go encoding/json", gov, "transform", err.Error(), fmt.Sprintf("json.Unmarshal(%s, &T{X int `json:\"x\"`}); %T", in, err), "go@"+gov)
	}
	{
		var t T
		d := json.NewDecoder(strings.NewReader(`{"x":1,"y":2}`))
		d.DisallowUnknownFields()
		err := d.Decode(&t)
		emit("Go encoding/json", gov, "transform", err.Error(), "Decoder.DisallowUnknownFields, extra field y", "go@"+gov)
	}
	{
		st, b := body(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10))
			http.Error(w, err.Error(), 413)
		}), "POST", "/", strings.Repeat("x", 100))
		emit("Go net/http", gov, "transform", b, fmt.Sprintf("http.MaxBytesReader(10), 100-byte body; HTTP %d", st), "go@"+gov)
	}
	// net/http client
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	sil, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := sil.Accept()
			if err != nil {
				return
			}
			_ = c
		}
	}()
	_, err := http.Get("http://" + closed + "/x")
	emit("Go net/http", gov, "upstream", err.Error(), "http.Get to a closed 127.0.0.1 port; *url.Error", "go@"+gov)
	cl := &http.Client{Timeout: 300 * time.Millisecond}
	_, err = cl.Get("http://" + sil.Addr().String() + "/x")
	emit("Go net/http", gov, "upstream", err.Error(), "http.Client{Timeout:300ms}.Get to a server that never answers", "go@"+gov)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+sil.Addr().String()+"/x", nil)
	_, err = http.DefaultClient.Do(req)
	cancel()
	emit("Go net/http", gov, "upstream", err.Error(), "request with context.WithTimeout(300ms) to a server that never answers", "go@"+gov)
	rs, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := rs.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1)
			c.Read(buf)
			c.Close()
		}
	}()
	_, err = http.Get("http://" + rs.Addr().String() + "/x")
	emit("Go net/http", gov, "upstream", err.Error(), "http.Get to a server that closes the connection after the request", "go@"+gov)
	// httputil.ReverseProxy default error log line
	// golang-jwt v4
	key := []byte("s3cret")
	expTok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}).SignedString(key)
	okTok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "42"}).SignedString(key)
	kf := func(k []byte) jwt.Keyfunc { return func(*jwt.Token) (interface{}, error) { return k, nil } }
	for _, tc := range []struct{ how, tok string; k []byte }{{"expired token", expTok, key}, {"wrong key", okTok, []byte("other")}, {"garbage token", "not-a-jwt", key}} {
		_, err := jwt.Parse(tc.tok, kf(tc.k))
		emit("golang-jwt/jwt", deb("jwt"), "auth", err.Error(), "jwt.Parse "+tc.how+" (v4 API, Debian golang-github-golang-jwt-jwt-dev)", "")
	}
	// grpc-go (Debian 1.33)
	{
		gctx, gc := context.WithTimeout(context.Background(), 2*time.Second)
		conn, _ := grpc.Dial(closed, grpc.WithInsecure())
		err := conn.Invoke(gctx, "/pkg.Svc/M", &emptyMsg{}, &emptyMsg{}, grpc.ForceCodec(rawCodec{}))
		gc()
		emit("grpc-go", deb("grpc"), "upstream", err.Error(), "ClientConn.Invoke to a closed port, 2s deadline (Debian golang-google-grpc-dev)", "")
		conn.Close()
		s := grpc.NewServer()
		gl, _ := net.Listen("tcp", "127.0.0.1:0")
		go s.Serve(gl)
		conn, _ = grpc.Dial(gl.Addr().String(), grpc.WithInsecure())
		err = conn.Invoke(context.Background(), "/pkg.Svc/Missing", &emptyMsg{}, &emptyMsg{}, grpc.ForceCodec(rawCodec{}))
		emit("grpc-go", deb("grpc"), "routing", err.Error(), "ClientConn.Invoke of an unregistered service on a real grpc.Server", "")
		gctx, gc = context.WithTimeout(context.Background(), 300*time.Millisecond)
		conn2, _ := grpc.Dial(sil.Addr().String(), grpc.WithInsecure())
		err = conn2.Invoke(gctx, "/pkg.Svc/M", &emptyMsg{}, &emptyMsg{}, grpc.ForceCodec(rawCodec{}))
		gc()
		emit("grpc-go", deb("grpc"), "upstream", err.Error(), "ClientConn.Invoke to a TCP listener that never speaks HTTP/2, 300ms deadline", "")
		s.Stop()
	}
}

type emptyMsg struct{}
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error)      { return nil, nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error { return nil }
func (rawCodec) Name() string                               { return "raw" }
