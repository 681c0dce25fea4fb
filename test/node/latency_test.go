//go:build node

package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/api/podcontract"
	"github.com/pybase/extraction-operator/test/harness/builders"
)

// latencyPods is how many Pods the latency experiment runs, one after the
// other, so that each one has the node to itself.
const latencyPods = 30

const latencyNamespace = "node-latency"

// seconds is a duration written as seconds, as people read them.
type seconds time.Duration

func (s seconds) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(time.Duration(s).Seconds(), 'f', 3, 64)), nil
}

// podTimes is when a Pod was seen Running and Succeeded, from its creation;
// a Pod that went from Pending to Succeeded between two updates was never
// seen Running (0).
type podTimes struct {
	Running   seconds `json:"runningSeconds"`
	Succeeded seconds `json:"succeededSeconds"`
}

// latencyResults is what `make bench-node` writes to NODE_RESULTS.
type latencyResults struct {
	Command            string     `json:"command"`
	Date               string     `json:"date"`
	Pods               int        `json:"pods"`
	SeenRunning        int        `json:"seenRunning"`
	CreateToRunning    quantiles  `json:"createToRunning"`
	CreateToSucceeded  quantiles  `json:"createToSucceeded"`
	KubeletToNodeReady seconds    `json:"kubeletToNodeReadySeconds"`
	BringUp            seconds    `json:"bringUpSeconds"`
	Each               []podTimes `json:"each"`
}

type quantiles struct {
	Median seconds `json:"medianSeconds"`
	P90    seconds `json:"p90Seconds"`
	Max    seconds `json:"maxSeconds"`
}

// quantilesOf takes the nearest rank.
func quantilesOf(ds []time.Duration) quantiles {
	s := slices.Sorted(slices.Values(ds))
	at := func(q float64) seconds { return seconds(s[int(q*float64(len(s)-1)+0.5)]) }
	return quantiles{Median: at(0.5), P90: at(0.9), Max: seconds(s[len(s)-1])}
}

// latencyPod is a bare Pod that runs the reference extractor on a real PDF
// as an attempt Pod does, under the restricted security context; no job owns
// it, so the operator leaves it alone.
func latencyPod(name, url string) *corev1.Pod {
	pod := builders.AttemptPod(latencyNamespace, name, "", 1, nil, nil)
	pod.Labels = map[string]string{"node-test": "latency"}
	c := &pod.Spec.Containers[0]
	c.Image = extractorImage
	c.ImagePullPolicy = corev1.PullNever
	c.Env = []corev1.EnvVar{
		{Name: podcontract.EnvFormat, Value: "pdf"},
		{Name: podcontract.EnvSourceURL, Value: url},
	}
	// As the operator's attempt Pods: a read-only image, scratch space in
	// /tmp.
	c.SecurityContext.ReadOnlyRootFilesystem = ptr.To(true)
	c.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	return pod
}

// timePod creates the Pod and watches it to the end.
func timePod(pod *corev1.Pod) podTimes {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watcher, err := k8sWatch.Watch(ctx, &corev1.PodList{}, client.InNamespace(pod.Namespace),
		client.MatchingFields{"metadata.name": pod.Name})
	Expect(err).NotTo(HaveOccurred())
	defer watcher.Stop()
	created := time.Now()
	Expect(k8s.Create(ctx, pod)).To(Succeed())
	var times podTimes
	for event := range watcher.ResultChan() {
		p, ok := event.Object.(*corev1.Pod)
		if !ok {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodRunning:
			if times.Running == 0 {
				times.Running = seconds(time.Since(created))
			}
		case corev1.PodSucceeded:
			times.Succeeded = seconds(time.Since(created))
			return times
		case corev1.PodFailed:
			Fail(fmt.Sprintf("Pod %s failed: %+v", p.Name, p.Status.ContainerStatuses))
		}
	}
	Fail("Pod " + pod.Name + " did not succeed in 2 minutes")
	return times
}

// The latency experiment has the node to itself: `make bench-node` runs
// only it, `make test-node` everything else.
var _ = Describe("Pods on a real node", Label("latency"), func() {
	BeforeEach(func() {
		ns := builders.Namespace(latencyNamespace, builders.RestrictedLabels)
		Expect(k8s.Create(context.Background(), ns)).To(Succeed())
		Eventually(func() error {
			return k8s.Get(context.Background(), client.ObjectKey{Namespace: latencyNamespace, Name: "default"}, &corev1.ServiceAccount{})
		}).Should(Succeed())
	})

	It("go from create to Running to Succeeded in seconds", func() {
		url, err := files.serveFile("/latency.pdf", fixture("ghostscript-3-pages.pdf"), 0)
		Expect(err).NotTo(HaveOccurred())
		var running, succeeded []time.Duration
		var each []podTimes
		for i := range latencyPods {
			t := timePod(latencyPod("latency-"+strconv.Itoa(i), url))
			each = append(each, t)
			succeeded = append(succeeded, time.Duration(t.Succeeded))
			if t.Running > 0 {
				running = append(running, time.Duration(t.Running))
			}
		}
		Expect(running).NotTo(BeEmpty(), "no Pod was seen Running")
		ready, err := os.ReadFile(filepath.Join(nodeDir, "kubelet-to-ready-seconds"))
		Expect(err).NotTo(HaveOccurred())
		readySeconds, err := strconv.ParseFloat(strings.TrimSpace(string(ready)), 64)
		Expect(err).NotTo(HaveOccurred())
		results := latencyResults{
			Command:            "make bench-node",
			Date:               time.Now().UTC().Format(time.RFC3339),
			Pods:               latencyPods,
			SeenRunning:        len(running),
			CreateToRunning:    quantilesOf(running),
			CreateToSucceeded:  quantilesOf(succeeded),
			KubeletToNodeReady: seconds(time.Duration(readySeconds * float64(time.Second))),
			BringUp:            seconds(bringUps[0]),
			Each:               each,
		}
		data, err := json.MarshalIndent(results, "", "  ")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("%s\n", data)
		if dir := os.Getenv("NODE_RESULTS"); dir != "" {
			Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(dir, "latency.json"), append(data, '\n'), 0o644)).To(Succeed())
		}
	})
})
