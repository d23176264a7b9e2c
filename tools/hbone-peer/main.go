// hbone-peer is an HBONE endpoint written with Go's own crypto/tls and golang.org/x/net/http2, used
// by the @ambient-mesh/hbone tests as an implementation we did not write.
//
//	hbone-peer server -listen 127.0.0.1:0 -cert c.pem -key k.pem -ca roots.pem
//	    Prints "listening <addr>", then "peer <uri-san>" for each accepted connection and
//	    "connect <authority>" for each CONNECT. Each CONNECT dials its :authority over TCP,
//	    answers 200 once the dial succeeded (503 otherwise) and pipes both ways with half-close.
//
//	hbone-peer client -connect 127.0.0.1:15008 -authority 127.0.0.1:9000 -cert c.pem -key k.pem \
//	    -ca roots.pem -expect spiffe://td/ns/n/sa/s -message hello
//	    Checks that the server presents the expected URI SAN, prints "peer <uri-san>", sends the
//	    message, half-closes, then prints "status <code>" and "response <base64 of all bytes read>".
//
// Both modes use TLS 1.3 only, ALPN h2, no SNI, and verify the peer chain against -ca with URI SAN
// checks instead of hostname checks.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: hbone-peer server|client [flags]")
	}
	switch os.Args[1] {
	case "server":
		runServer(os.Args[2:])
	case "client":
		runClient(os.Args[2:])
	default:
		fail("unknown mode " + os.Args[1] + "; use server or client")
	}
}

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func say(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(out.w, format+"\n", args...)
	out.w.Flush()
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "hbone-peer: "+msg)
	os.Exit(2)
}

type tlsFiles struct{ cert, key, ca string }

func (f *tlsFiles) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "cert", "", "PEM certificate chain (leaf first)")
	fs.StringVar(&f.key, "key", "", "PEM private key")
	fs.StringVar(&f.ca, "ca", "", "PEM trust roots")
}

func (f *tlsFiles) load() (tls.Certificate, *x509.CertPool) {
	cert, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		fail("load key pair: " + err.Error())
	}
	pem, err := os.ReadFile(f.ca)
	if err != nil {
		fail("read roots: " + err.Error())
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail("no certificate in " + f.ca)
	}
	return cert, roots
}

// verifyChain checks the peer chain against roots (any key usage: SPIFFE leaves carry URI SANs
// only) and returns the leaf's URI SANs.
func verifyChain(rawCerts [][]byte, roots *x509.CertPool) ([]string, error) {
	if len(rawCerts) == 0 {
		return nil, errors.New("peer sent no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := certs[0].Verify(opts); err != nil {
		return nil, err
	}
	uris := make([]string, 0, len(certs[0].URIs))
	for _, u := range certs[0].URIs {
		uris = append(uris, u.String())
	}
	return uris, nil
}

func baseConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		NextProtos:   []string{"h2"},
	}
}

func runServer(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	var files tlsFiles
	files.register(fs)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	_ = fs.Parse(args)
	cert, roots := files.load()
	cfg := baseConfig(cert)
	cfg.ClientAuth = tls.RequireAnyClientCert
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		_, err := verifyChain(raw, roots)
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("listen: " + err.Error())
	}
	say("listening %s", ln.Addr().String())
	h2 := &http2.Server{}
	for {
		raw, err := ln.Accept()
		if err != nil {
			fail("accept: " + err.Error())
		}
		go serveConn(h2, tls.Server(raw, cfg), roots)
	}
}

func serveConn(h2 *http2.Server, conn *tls.Conn, roots *x509.CertPool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		say("handshake-error %s", strings.ReplaceAll(err.Error(), "\n", " "))
		_ = conn.Close()
		return
	}
	uris, _ := verifyChain(certsRaw(conn.ConnectionState().PeerCertificates), roots)
	say("peer %s", strings.Join(uris, ","))
	h2.ServeConn(conn, &http2.ServeConnOpts{Handler: http.HandlerFunc(handleConnect)})
}

func certsRaw(certs []*x509.Certificate) [][]byte {
	raw := make([][]byte, len(certs))
	for i, c := range certs {
		raw[i] = c.Raw
	}
	return raw
}

func handleConnect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	say("connect %s", r.Host)
	upstream, err := net.DialTimeout("tcp", r.Host, 10*time.Second)
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	defer upstream.Close()
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	uploaded := make(chan struct{})
	go func() {
		_, _ = io.Copy(upstream, r.Body)
		_ = upstream.(*net.TCPConn).CloseWrite()
		close(uploaded)
	}()
	buf := make([]byte, 64*1024)
	for {
		n, err := upstream.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			w.(http.Flusher).Flush()
		}
		if err != nil {
			break
		}
	}
	<-uploaded
}

func runClient(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	var files tlsFiles
	files.register(fs)
	connect := fs.String("connect", "", "HBONE server address (next hop)")
	authority := fs.String("authority", "", "CONNECT :authority")
	expect := fs.String("expect", "", "URI SAN the server must present")
	message := fs.String("message", "hello", "bytes to send through the tunnel")
	_ = fs.Parse(args)
	cert, roots := files.load()
	cfg := baseConfig(cert)
	// Hostname checks do not apply to SPIFFE certificates: verify the chain and the URI SAN instead.
	cfg.InsecureSkipVerify = true
	var peer []string
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		uris, err := verifyChain(raw, roots)
		if err != nil {
			return err
		}
		for _, u := range uris {
			if u == *expect {
				peer = uris
				return nil
			}
		}
		return fmt.Errorf("peer did not present the expected SAN %s (got %v)", *expect, uris)
	}
	raw, err := net.DialTimeout("tcp", *connect, 10*time.Second)
	if err != nil {
		fail("dial: " + err.Error())
	}
	conn := tls.Client(raw, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		fail("handshake: " + err.Error())
	}
	say("peer %s", strings.Join(peer, ","))
	cc, err := (&http2.Transport{}).NewClientConn(conn)
	if err != nil {
		fail("http2: " + err.Error())
	}
	body, writer := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodConnect, "https://"+*authority, body)
	if err != nil {
		fail("request: " + err.Error())
	}
	req.Host = *authority
	res, err := cc.RoundTrip(req)
	if err != nil {
		fail("round trip: " + err.Error())
	}
	say("status %d", res.StatusCode)
	if res.StatusCode == http.StatusOK {
		_, _ = writer.Write([]byte(*message))
	}
	_ = writer.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		fail("read: " + err.Error())
	}
	say("response %s", base64.StdEncoding.EncodeToString(got))
	_ = cc.Close()
}
