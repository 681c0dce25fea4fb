package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// fieldManager names the plugin in the managedFields of the jobs it edits, so
// `kubectl get ej NAME --show-managed-fields` shows who retried or cancelled.
const fieldManager = "kubectl-extraction"

// Options holds what every subcommand shares: where to connect, where to
// write, and what time it is.
type Options struct {
	ConfigFlags *genericclioptions.ConfigFlags
	Streams     genericiooptions.IOStreams
	Clock       clock.PassiveClock
}

// NewRootCommand builds `kubectl extraction` with its subcommands.
func NewRootCommand(streams genericiooptions.IOStreams, clk clock.PassiveClock) *cobra.Command {
	o := &Options{
		ConfigFlags: genericclioptions.NewConfigFlags(true),
		Streams:     streams,
		Clock:       clk,
	}
	cmd := &cobra.Command{
		Use:   "kubectl-extraction",
		Short: "Retry, cancel and inspect ExtractionJobs and their ExtractorClasses",
		Long: `Retry, cancel and inspect ExtractionJobs (extraction.pybase.io/v1alpha1),
and list the ExtractorClasses that run them.

The plugin acts with your own kubeconfig credentials: RBAC decides whether you
may retry or cancel a job (both patch the ExtractionJob) or only look at it.`,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl extraction",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.CompletionOptions.HiddenDefaultCmd = true
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.ConfigFlags.AddFlags(cmd.PersistentFlags())

	cmd.AddCommand(
		newRetryCommand(o),
		newCancelCommand(o),
		newStatusCommand(o),
		newSummaryCommand(o),
		newClassesCommand(o),
		newCircuitCommand(o),
	)
	return cmd
}

// Namespace is the namespace of -n/--namespace, or else of the kubeconfig's
// current context, or else "default".
func (o *Options) Namespace() (string, error) {
	ns, _, err := o.ConfigFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// Client connects to the API server of the kubeconfig's current context.
func (o *Options) Client() (client.Client, error) {
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return NewClient(cfg)
}

// key is the namespaced name of the job that a command's argument names.
func (o *Options) key(name string) (types.NamespacedName, error) {
	ns, err := o.Namespace()
	if err != nil {
		return types.NamespacedName{}, err
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// NewClient returns a client for ExtractionJobs and ExtractorClasses with the plugin's rate limits.
func NewClient(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cfg.UserAgent = fieldManager
	scheme := runtime.NewScheme()
	if err := ejv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	return c, nil
}
