//go:build chaos

package chaos

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// controlPlane is an etcd and a kube-apiserver run by the suite itself, not
// by envtest: envtest makes a new CA on every start, and a restarted API
// server must present the certificate the operator already trusts. The
// certificates are made once, with crypto/x509, and kept in certDir.
type controlPlane struct {
	dir, certDir          string
	etcdBinary, apiBinary string
	etcdPort, etcdPeer    int
	apiPort               int
	etcd, api             *exec.Cmd
	apiLog                *os.File
	apiStarts             int
	apiExited             chan struct{}
	caPEM                 []byte
	clientCert, clientKey []byte
	kubeconfig            string
}

func newControlPlane(dir, etcdBinary, apiBinary string) (*controlPlane, error) {
	cp := &controlPlane{
		dir: dir, certDir: filepath.Join(dir, "certs"),
		etcdBinary: etcdBinary, apiBinary: apiBinary,
		etcdPort: freePort(), etcdPeer: freePort(), apiPort: freePort(),
	}
	if err := os.MkdirAll(cp.certDir, 0o700); err != nil {
		return nil, err
	}
	if err := cp.makeCertificates(); err != nil {
		return nil, fmt.Errorf("making certificates: %w", err)
	}
	cp.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := cp.writeKubeconfig(cp.kubeconfig); err != nil {
		return nil, err
	}
	return cp, nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// makeCertificates writes a CA, the API server's serving certificate for
// 127.0.0.1 and localhost, an admin client certificate in system:masters and
// a service-account signing key.
func (cp *controlPlane) makeCertificates() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "extraction-chaos-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	issue := func(serial int64, template *x509.Certificate) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		template.SerialNumber = big.NewInt(serial)
		template.NotBefore, template.NotAfter = now.Add(-time.Hour), now.Add(7*24*time.Hour)
		template.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		der, err := x509.CreateCertificate(rand.Reader, template, caCert, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
	}
	servingCert, servingKey, err := issue(2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return err
	}
	cp.clientCert, cp.clientKey, err = issue(3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "chaos-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saKeyDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	cp.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		"ca.crt":      cp.caPEM,
		"serving.crt": servingCert,
		"serving.key": servingKey,
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saKeyDER}),
		"sa.pub":      pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(cp.certDir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (cp *controlPlane) url() string { return fmt.Sprintf("https://127.0.0.1:%d", cp.apiPort) }

func (cp *controlPlane) writeKubeconfig(path string) error {
	config := clientcmdapi.NewConfig()
	config.Clusters["chaos"] = &clientcmdapi.Cluster{Server: cp.url(), CertificateAuthorityData: cp.caPEM}
	config.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cp.clientCert, ClientKeyData: cp.clientKey}
	config.Contexts["chaos"] = &clientcmdapi.Context{Cluster: "chaos", AuthInfo: "admin"}
	config.CurrentContext = "chaos"
	return clientcmd.WriteToFile(*config, path)
}

// restConfig is the admin's client configuration.
func (cp *controlPlane) restConfig(qps float32, burst int) *rest.Config {
	return &rest.Config{
		Host: cp.url(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: cp.caPEM, CertData: cp.clientCert, KeyData: cp.clientKey,
		},
		QPS: qps, Burst: burst,
		Timeout: 30 * time.Second,
	}
}

// childProcess starts a command that dies with the test binary.
func childProcess(log *os.File, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

func (cp *controlPlane) start() error {
	log, err := os.OpenFile(filepath.Join(cp.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", cp.etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", cp.etcdPeer)
	cp.etcd, err = childProcess(log, cp.etcdBinary,
		"--name=chaos",
		"--data-dir="+filepath.Join(cp.dir, "etcd-data"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=chaos="+peer,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	)
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	return cp.startAPIServer()
}

func (cp *controlPlane) startAPIServer() error {
	cp.apiStarts++
	log, err := os.OpenFile(filepath.Join(cp.dir, "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "\n=== chaos: kube-apiserver start #%d at %s ===\n", cp.apiStarts, time.Now().Format(time.RFC3339Nano))
	cp.apiLog = log
	cert := func(name string) string { return filepath.Join(cp.certDir, name) }
	cp.api, err = childProcess(log, cp.apiBinary,
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", cp.etcdPort),
		"--bind-address=127.0.0.1", "--endpoint-reconciler-type=none",
		fmt.Sprintf("--secure-port=%d", cp.apiPort),
		"--cert-dir="+cp.certDir,
		"--tls-cert-file="+cert("serving.crt"), "--tls-private-key-file="+cert("serving.key"),
		"--client-ca-file="+cert("ca.crt"),
		"--authorization-mode=RBAC",
		// No kube-controller-manager creates the default ServiceAccount.
		"--disable-admission-plugins=ServiceAccount",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer="+cp.url(),
		"--service-account-key-file="+cert("sa.pub"),
		"--service-account-signing-key-file="+cert("sa.key"),
		"--allow-privileged=true",
		"--v=0",
	)
	if err != nil {
		return fmt.Errorf("starting kube-apiserver: %w", err)
	}
	return cp.waitReady(2 * time.Minute)
}

// waitReady waits for /readyz, trusting only the suite's own CA, so a
// restarted API server with another certificate would never pass.
func (cp *controlPlane) waitReady(timeout time.Duration) error {
	cert, err := tls.X509KeyPair(cp.clientCert, cp.clientKey)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cp.caPEM)
	httpClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	deadline := time.Now().Add(timeout)
	exited := make(chan struct{})
	api := cp.api
	cp.apiExited = exited
	go func() { _ = api.Wait(); close(exited) }()
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("kube-apiserver exited; see %s", cp.apiLog.Name())
		default:
		}
		resp, err := httpClient.Get(cp.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver not ready after %s; see %s", timeout, cp.apiLog.Name())
}

// restartAPIServer stops the API server, gracefully or with SIGKILL, and
// starts it again on the same port with the same certificates; etcd keeps
// running and keeps the data.
func (cp *controlPlane) restartAPIServer(kill bool, pause time.Duration) (down time.Duration, err error) {
	start := time.Now()
	signal := syscall.SIGTERM
	if kill {
		signal = syscall.SIGKILL
	}
	fmt.Fprintf(cp.apiLog, "\n=== chaos: %s to kube-apiserver at %s ===\n", signal, time.Now().Format(time.RFC3339Nano))
	_ = cp.api.Process.Signal(signal)
	// A graceful stop waits up to a minute for open watches to end; a
	// supervisor (the kubelet of a static Pod, systemd) would not wait that
	// long either.
	select {
	case <-cp.apiExited:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(cp.apiLog, "\n=== chaos: still running 10s after %s: SIGKILL at %s ===\n", signal, time.Now().Format(time.RFC3339Nano))
		_ = cp.api.Process.Kill()
		<-cp.apiExited
	}
	time.Sleep(pause)
	err = cp.startAPIServer()
	return time.Since(start), err
}

func (cp *controlPlane) stop() {
	if cp.api != nil && cp.api.Process != nil {
		_ = cp.api.Process.Signal(syscall.SIGTERM)
		select {
		case <-cp.apiExited:
		case <-time.After(30 * time.Second):
			_ = cp.api.Process.Kill()
		}
	}
	if cp.etcd != nil && cp.etcd.Process != nil {
		_ = cp.etcd.Process.Kill()
		_ = cp.etcd.Wait()
	}
}
