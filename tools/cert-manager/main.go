// Command cert-manager-signer runs cert-manager's own controllers for the Kubernetes CSR path:
// the ClusterIssuer controller (marks a CA ClusterIssuer Ready) and the CertificateSigningRequest
// CA signer (signs approved certificates.k8s.io/v1 CSRs whose signerName is
// clusterissuers.cert-manager.io/<name>). cert-manager's cmd/controller module is not served by the
// Go module proxy, so this small main starts the controllers of the root module the same way.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificatesigningrequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	// The CA issuer type: what the ClusterIssuer controller checks for Ready.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	utilfeature "github.com/cert-manager/cert-manager/pkg/util/feature"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "path to a kubeconfig")
	clusterNs := flag.String("cluster-resource-namespace", "cert-manager", "namespace of ClusterIssuer Secrets")
	flag.Parse()
	if err := utilfeature.DefaultMutableFeatureGate.Set("ExperimentalCertificateSigningRequestControllers=true"); err != nil {
		fmt.Fprintln(os.Stderr, "feature gate:", err)
		os.Exit(1)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx = logf.NewContext(ctx, logf.Log)
	opts := controllerpkg.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: *clusterNs},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Second,
			CertificateRequestMaximumBackoffDuration: time.Minute,
		},
	}
	factory, err := controllerpkg.NewContextFactory(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "context:", err)
		os.Exit(1)
	}
	names := []string{"clusterissuers", "certificatesigningrequests-issuer-ca"}
	var wg sync.WaitGroup
	var controllers []controllerpkg.Interface
	for _, name := range names {
		build, ok := controllerpkg.Known()[name]
		if !ok {
			fmt.Fprintln(os.Stderr, "unknown controller", name)
			os.Exit(1)
		}
		c, err := build(factory)
		if err != nil {
			fmt.Fprintln(os.Stderr, "controller", name, err)
			os.Exit(1)
		}
		controllers = append(controllers, c)
	}
	base, err := factory.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.SharedInformerFactory.Start(ctx.Done())
	for i, c := range controllers {
		wg.Add(1)
		go func(name string, c controllerpkg.Interface) {
			defer wg.Done()
			if err := c.Run(2, ctx); err != nil {
				fmt.Fprintln(os.Stderr, "controller", name, "stopped:", err)
			}
		}(names[i], c)
	}
	fmt.Println("cert-manager-signer: controllers started:", names)
	wg.Wait()
}
