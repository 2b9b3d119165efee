package k8s

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/adtrack/postback/deploy"
	"github.com/adtrack/postback/deploy/configref"
)

const (
	referencePath  = "../../docs/configuration.md"
	dockerfilePath = "../docker/Dockerfile"
	servicesDir    = "../../services"
)

// variants are the kustomizations the test builds, by subtest name.
var variants = []struct{ name, dir string }{
	{"base", "."},
	{"secured", "overlays/secured"},
}

// kinds are the kinds the pipeline deploys, with their API version and
// typed value; any other kind in a build is an error.
var kinds = map[string]struct {
	apiVersion string
	new        func() metav1.Object
}{
	"Deployment":              {"apps/v1", func() metav1.Object { return &appsv1.Deployment{} }},
	"StatefulSet":             {"apps/v1", func() metav1.Object { return &appsv1.StatefulSet{} }},
	"Job":                     {"batch/v1", func() metav1.Object { return &batchv1.Job{} }},
	"Service":                 {"v1", func() metav1.Object { return &corev1.Service{} }},
	"ConfigMap":               {"v1", func() metav1.Object { return &corev1.ConfigMap{} }},
	"Secret":                  {"v1", func() metav1.Object { return &corev1.Secret{} }},
	"PodDisruptionBudget":     {"policy/v1", func() metav1.Object { return &policyv1.PodDisruptionBudget{} }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() metav1.Object { return &autoscalingv2.HorizontalPodAutoscaler{} }},
}

// strictUnmarshal decodes YAML into v as the API server's strict field
// validation does: an unknown field, a field in the wrong case, a duplicate
// field or a value of the wrong type is an error. (sigs.k8s.io/yaml's
// UnmarshalStrict matches field names case-insensitively, so it would take
// readOnlyRootFileSystem for readOnlyRootFilesystem.)
func strictUnmarshal(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// decode decodes one manifest into its Kubernetes API type, strictly
// (strictUnmarshal); a kind the pipeline does not deploy is an error too.
func decode(doc []byte) (kind string, obj metav1.Object, err error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return "", nil, fmt.Errorf("manifest: %w", err)
	}
	k, ok := kinds[tm.Kind]
	if !ok {
		return "", nil, fmt.Errorf("kind %q (%s) is not one the pipeline deploys", tm.Kind, tm.APIVersion)
	}
	if tm.APIVersion != k.apiVersion {
		return "", nil, fmt.Errorf("%s: apiVersion %q, want %q", tm.Kind, tm.APIVersion, k.apiVersion)
	}
	obj = k.new()
	if err := strictUnmarshal(doc, obj); err != nil {
		return "", nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return tm.Kind, obj, nil
}

// cluster is what one kustomize build would create, by kind and name.
type cluster struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	jobs         map[string]*batchv1.Job
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
}

// build runs kustomize on dir, as `kubectl apply -k` would, and decodes
// every object it makes.
func build(t *testing.T, dir string) *cluster {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	cl := &cluster{
		deployments: map[string]*appsv1.Deployment{}, statefulSets: map[string]*appsv1.StatefulSet{},
		jobs: map[string]*batchv1.Job{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{},
	}
	for _, res := range rm.Resources() {
		doc, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", res.CurId(), err)
		}
		_, obj, err := decode(doc)
		if err != nil {
			t.Errorf("%s: %v", res.CurId(), err)
			continue
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			cl.deployments[o.Name] = o
		case *appsv1.StatefulSet:
			cl.statefulSets[o.Name] = o
		case *batchv1.Job:
			cl.jobs[o.Name] = o
		case *corev1.Service:
			cl.services[o.Name] = o
		case *corev1.ConfigMap:
			cl.configMaps[o.Name] = o
		case *corev1.Secret:
			cl.secrets[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			cl.pdbs[o.Name] = o
		case *autoscalingv2.HorizontalPodAutoscaler:
			cl.hpas[o.Name] = o
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return cl
}

// workload is a pod template and what runs it.
type workload struct {
	kind, name string
	pod        *corev1.PodTemplateSpec
}

// longRunning reports whether the workload serves probes (not a Job).
func (w workload) longRunning() bool { return w.kind != "Job" }

func (cl *cluster) workloads() []workload {
	var out []workload
	for _, d := range cl.deployments {
		out = append(out, workload{"Deployment", d.Name, &d.Spec.Template})
	}
	for _, s := range cl.statefulSets {
		out = append(out, workload{"StatefulSet", s.Name, &s.Spec.Template})
	}
	for _, j := range cl.jobs {
		out = append(out, workload{"Job", j.Name, &j.Spec.Template})
	}
	slices.SortFunc(out, func(a, b workload) int { return strings.Compare(a.kind+a.name, b.kind+b.name) })
	return out
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// container is one container of a workload with the configuration it
// runs with.
type container struct {
	w       workload
	c       *corev1.Container
	init    bool
	service string            // its section of the config reference: the binary it runs
	env     map[string]string // literal values; a field reference as "fieldRef:<path>"
	file    []byte            // its --config file
	cfg     map[string]string // defaults, file and env layered (configref.Effective)
}

func (c container) String() string { return c.w.kind + "/" + c.w.name + "/" + c.c.Name }

// containers resolves every container's config file through its mounts and
// computes its effective configuration.
func (cl *cluster) containers(t *testing.T, ref *configref.Reference) []container {
	t.Helper()
	var out []container
	for _, w := range cl.workloads() {
		for i, list := range [][]corev1.Container{w.pod.Spec.InitContainers, w.pod.Spec.Containers} {
			for j := range list {
				c := container{w: w, c: &list[j], init: i == 0, env: map[string]string{}}
				if len(c.c.Command) == 0 {
					t.Fatalf("%s: no command: the image has no entrypoint", c)
				}
				c.service = c.c.Command[0]
				for _, e := range c.c.Env {
					switch {
					case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
						c.env[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
					default:
						c.env[e.Name] = e.Value
					}
				}
				configPath := configref.FlagValue(c.c.Command, "config")
				if configPath == "" {
					t.Fatalf("%s: no --config FILE", c)
				}
				file, err := cl.fileContent(w.pod, c.c, configPath)
				if err != nil {
					t.Fatalf("%s: config file: %v", c, err)
				}
				c.file = file
				cfg, err := ref.Effective(c.service, file, c.env)
				if err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				c.cfg = cfg
				out = append(out, c)
			}
		}
	}
	return out
}

// fileContent returns what container c of pod reads at file: the key of
// the ConfigMap or Secret mounted there.
func (cl *cluster) fileContent(pod *corev1.PodTemplateSpec, c *corev1.Container, file string) ([]byte, error) {
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") &&
			(mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		return nil, fmt.Errorf("%s is on no volume mount of container %s", file, c.Name)
	}
	rel := strings.TrimPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == mount.Name {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return nil, fmt.Errorf("%s: mount %s names no volume of the pod", file, mount.Name)
	}
	keyOf := func(items []corev1.KeyToPath) (string, error) {
		if len(items) == 0 {
			return rel, nil
		}
		for _, it := range items {
			if it.Path == rel {
				return it.Key, nil
			}
		}
		return "", fmt.Errorf("%s: volume %s projects no item to %s", file, vol.Name, rel)
	}
	switch {
	case vol.ConfigMap != nil:
		cm, ok := cl.configMaps[vol.ConfigMap.Name]
		if !ok {
			return nil, fmt.Errorf("%s: volume %s: no ConfigMap %s", file, vol.Name, vol.ConfigMap.Name)
		}
		key, err := keyOf(vol.ConfigMap.Items)
		if err != nil {
			return nil, err
		}
		v, ok := cm.Data[key]
		if !ok {
			return nil, fmt.Errorf("%s: ConfigMap %s has no key %s", file, cm.Name, key)
		}
		return []byte(v), nil
	case vol.Secret != nil:
		s, ok := cl.secrets[vol.Secret.SecretName]
		if !ok {
			return nil, fmt.Errorf("%s: volume %s: no Secret %s", file, vol.Name, vol.Secret.SecretName)
		}
		key, err := keyOf(vol.Secret.Items)
		if err != nil {
			return nil, err
		}
		if v, ok := s.StringData[key]; ok {
			return []byte(v), nil
		}
		if v, ok := s.Data[key]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s: Secret %s has no key %s", file, s.Name, key)
	default:
		return nil, fmt.Errorf("%s: volume %s is neither a ConfigMap nor a Secret", file, vol.Name)
	}
}

// listenKey is the key of the address where a service serves /healthz and
// /readyz: ingest on its HTTP port, the others on telemetry.addr.
func listenKey(service string) string {
	if service == "ingest" {
		return "http.addr"
	}
	return "telemetry.addr"
}

// containerPort resolves a probe's or Service's port (a name or a number)
// to a port c declares, or 0.
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

func TestManifests(t *testing.T) {
	ref, err := configref.Load(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := deploy.ReadDockerfile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	binaries := serviceBinaries(t)
	image := kustomizeImage(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			cl := build(t, v.dir)
			t.Run("objects", func(t *testing.T) { checkObjects(t, cl) })
			cs := cl.containers(t, ref)
			t.Run("containers", func(t *testing.T) { checkContainers(t, cl, cs, ref, binaries, image) })
			t.Run("shared config", func(t *testing.T) { checkSharedConfig(t, cs) })
			t.Run("probes", func(t *testing.T) { checkProbes(t, cs) })
			t.Run("services", func(t *testing.T) { checkServices(t, cl) })
			t.Run("attribution", func(t *testing.T) { checkAttribution(t, cl, cs) })
			t.Run("disruption and scaling", func(t *testing.T) { checkDisruptionAndScaling(t, cl) })
			t.Run("bootstrap job", func(t *testing.T) { checkBootstrap(t, cl, cs, img) })
			if v.name == "secured" {
				t.Run("tls and sasl", func(t *testing.T) { checkSecured(t, cs) })
			} else {
				t.Run("plaintext and placeholders", func(t *testing.T) { checkBase(t, cl, cs) })
			}
		})
	}
}

// serviceBinaries are the binaries the image holds: deploy/docker/Dockerfile
// builds ./services/... into /usr/local/bin.
func serviceBinaries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(servicesDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// kustomizeImage is the image the base's images entry gives the
// placeholder "postback".
func kustomizeImage(t *testing.T) string {
	t.Helper()
	k := readKustomization(t, "base/kustomization.yaml")
	for _, im := range k.Images {
		if im.Name == "postback" {
			return im.NewName + ":" + im.NewTag
		}
	}
	t.Fatal("kustomization.yaml: no images entry for the placeholder postback")
	return ""
}

func readKustomization(t *testing.T, file string) *kusttypes.Kustomization {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var k kusttypes.Kustomization
	if err := strictUnmarshal(data, &k); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &k
}

func checkObjects(t *testing.T, cl *cluster) {
	for _, name := range []string{"postback-ingest", "postback-sink", "postback-forwarder"} {
		if cl.deployments[name] == nil {
			t.Errorf("no Deployment %s", name)
		}
	}
	if cl.statefulSets["postback-attribution"] == nil {
		t.Error("no StatefulSet postback-attribution")
	}
	if cl.jobs["postback-bootstrap"] == nil {
		t.Error("no Job postback-bootstrap")
	}
	if cl.hpas["postback-ingest"] == nil {
		t.Error("no HorizontalPodAutoscaler postback-ingest")
	}
	if cl.secrets["postback-secrets"] == nil {
		t.Error("no Secret postback-secrets")
	}
	for _, name := range []string{"postback-ingest", "postback-attribution", "postback-sink", "postback-forwarder"} {
		if cl.services[name] == nil {
			t.Errorf("no Service %s", name)
		}
		if cl.pdbs[name] == nil {
			t.Errorf("no PodDisruptionBudget %s", name)
		}
	}
	// A config per service, named with a hash of its content so that a
	// change rolls the pods.
	for _, svc := range []string{"ingest", "attribution", "sink", "forwarder", "postbackctl"} {
		n := 0
		for name := range cl.configMaps {
			if strings.HasPrefix(name, "postback-"+svc+"-config-") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d ConfigMaps postback-%s-config-<hash>, want 1", n, svc)
		}
	}
}

func checkContainers(t *testing.T, cl *cluster, cs []container, ref *configref.Reference, binaries []string, image string) {
	for _, c := range cs {
		if !slices.Contains(binaries, c.service) {
			t.Errorf("%s: runs %q, which the image does not hold (it has %v)", c, c.service, binaries)
		}
		if c.c.Image != image {
			t.Errorf("%s: image %q, want %q: the placeholder postback through kustomize's images", c, c.c.Image, image)
		}
		if err := ref.CheckYAML(c.service, c.file); err != nil {
			t.Errorf("%s: config file: %v", c, err)
		}
		for _, e := range c.c.Env {
			if strings.HasPrefix(e.Name, "POSTBACK_") {
				if err := ref.CheckEnv(c.service, e.Name); err != nil {
					t.Errorf("%s: %v", c, err)
				}
			}
		}
		checkFlags(t, c, ref)
		// A secret or CA named by a *_file key must be mounted, from a key
		// that exists.
		for key, v := range c.cfg {
			if strings.HasSuffix(key, "_file") && v != "" {
				if _, err := cl.fileContent(c.w.pod, c.c, v); err != nil {
					t.Errorf("%s: %s: %v", c, key, err)
				}
			}
		}
		for name, v := range c.env {
			if strings.HasPrefix(name, "POSTBACK_") && strings.HasSuffix(name, "_FILE") {
				if _, err := cl.fileContent(c.w.pod, c.c, v); err != nil {
					t.Errorf("%s: %s: %v", c, name, err)
				}
			}
		}
		checkSecurity(t, c)
		checkResources(t, c)
	}
	for _, w := range cl.workloads() {
		for _, v := range w.pod.Spec.Volumes {
			if v.Secret != nil {
				s, ok := cl.secrets[v.Secret.SecretName]
				if !ok {
					t.Errorf("%s/%s: volume %s: no Secret %s", w.kind, w.name, v.Name, v.Secret.SecretName)
					continue
				}
				for _, it := range v.Secret.Items {
					if _, ok := s.StringData[it.Key]; !ok && s.Data[it.Key] == nil {
						t.Errorf("%s/%s: volume %s: Secret %s has no key %s", w.kind, w.name, v.Name, s.Name, it.Key)
					}
				}
			}
			if v.ConfigMap != nil && cl.configMaps[v.ConfigMap.Name] == nil {
				t.Errorf("%s/%s: volume %s: no ConfigMap %s", w.kind, w.name, v.Name, v.ConfigMap.Name)
			}
		}
	}
}

// checkFlags checks that every flag of the command is a key of the
// service (flags are config keys), apart from --config and postbackctl's
// --wait; only postbackctl takes operands (its subcommand and file).
func checkFlags(t *testing.T, c container, ref *configref.Reference) {
	args := c.c.Command[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, hasValue := strings.CutPrefix(a, "--")
		if !hasValue {
			if c.service != "postbackctl" {
				t.Errorf("%s: operand %q: %s takes flags only", c, a, c.service)
			}
			continue
		}
		name, _, inline := strings.Cut(name, "=")
		switch {
		case name == "config":
		case name == "wait" && c.service == "postbackctl":
		default:
			if _, ok := ref.Key(c.service, name); !ok {
				t.Errorf("%s: flag --%s is not a key of %s in the config reference", c, name, c.service)
			}
		}
		if !inline {
			i++ // its value
		}
	}
}

func checkSecurity(t *testing.T, c container) {
	pod := c.w.pod.Spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", c)
		return
	}
	// The image's user is the name "nonroot": the kubelet can enforce
	// runAsNonRoot only with a numeric user.
	if !ptrOr(sc.RunAsNonRoot, ptrOr(pod.RunAsNonRoot, false)) {
		t.Errorf("%s: runAsNonRoot is not set", c)
	}
	if uid := ptrOr(sc.RunAsUser, ptrOr(pod.RunAsUser, 0)); uid == 0 {
		t.Errorf("%s: no numeric non-root runAsUser", c)
	}
	if !ptrOr(sc.ReadOnlyRootFilesystem, false) {
		t.Errorf("%s: root filesystem is writable", c)
	}
	if ptrOr(sc.AllowPrivilegeEscalation, true) {
		t.Errorf("%s: allowPrivilegeEscalation is not false", c)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities are not dropped (drop: [ALL])", c)
	}
	if ptrOr(c.w.pod.Spec.AutomountServiceAccountToken, true) {
		t.Errorf("%s/%s: mounts a service account token it does not use", c.w.kind, c.w.name)
	}
}

func checkResources(t *testing.T, c container) {
	r := c.c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		if !okReq || !okLim || req.IsZero() || lim.IsZero() {
			t.Errorf("%s: %s request and limit must both be set", c, name)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above its limit %s", c, name, req.String(), lim.String())
		}
	}
}

// checkSharedConfig checks that the containers agree on the shared keys (configref.SharedKey): a
// service configured apart from the others would read or write elsewhere.
func checkSharedConfig(t *testing.T, cs []container) {
	first := map[string]container{}
	for _, c := range cs {
		for key, v := range c.cfg {
			if !configref.SharedKey(key, c.service) {
				continue
			}
			f, seen := first[key]
			if !seen {
				first[key] = c
				continue
			}
			if f.cfg[key] != v {
				t.Errorf("%s: %s = %q, but %s has %q", c, key, v, f, f.cfg[key])
			}
		}
	}
	if _, ok := first["kafka.brokers"]; !ok {
		t.Error("no container has kafka.brokers")
	}
}

// checkProbes checks that each long-running container listens on all
// interfaces at a port it declares, and that its probes ask that port for
// /healthz (liveness) and /readyz (readiness).
func checkProbes(t *testing.T, cs []container) {
	n := 0
	for _, c := range cs {
		if !c.w.longRunning() {
			continue
		}
		n++
		key := listenKey(c.service)
		host, portText, err := net.SplitHostPort(c.cfg[key])
		if err != nil {
			t.Errorf("%s: %s = %q: %v", c, key, c.cfg[key], err)
			continue
		}
		if host != "" && host != "0.0.0.0" && host != "::" {
			t.Errorf("%s: %s = %q: the kubelet and Services reach the pod IP, not %s", c, key, c.cfg[key], host)
		}
		port, err := strconv.Atoi(portText)
		if err != nil || containerPort(c.c, intstr.FromInt32(int32(port))) == 0 {
			t.Errorf("%s: %s = %q, a port the container does not declare", c, key, c.cfg[key])
			continue
		}
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
			path  string
		}{{"liveness", c.c.LivenessProbe, "/healthz"}, {"readiness", c.c.ReadinessProbe, "/readyz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: no HTTP %s probe", c, p.kind)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s: %s probe asks %s, want %s", c, p.kind, p.probe.HTTPGet.Path, p.path)
			}
			if got := containerPort(c.c, p.probe.HTTPGet.Port); got != int32(port) {
				t.Errorf("%s: %s probe port %s is %d, but the service serves it on %d (%s)",
					c, p.kind, p.probe.HTTPGet.Port.String(), got, port, key)
			}
		}
	}
	if n != 4 {
		t.Errorf("%d long-running containers, want 4 (ingest, attribution, sink, forwarder)", n)
	}
}

// selects returns the long-running workloads whose pods sel matches.
func (cl *cluster) selects(sel labels.Selector) []workload {
	var out []workload
	for _, w := range cl.workloads() {
		if w.longRunning() && !sel.Empty() && sel.Matches(labels.Set(w.pod.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func checkServices(t *testing.T, cl *cluster) {
	for _, s := range cl.services {
		ws := cl.selects(labels.SelectorFromSet(s.Spec.Selector))
		if len(ws) != 1 {
			t.Errorf("Service %s selects %d workloads, want 1", s.Name, len(ws))
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			found := false
			for i := range ws[0].pod.Spec.Containers {
				if containerPort(&ws[0].pod.Spec.Containers[i], target) != 0 {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s port %s: target %s is no port of %s %s", s.Name, p.Name, target.String(), ws[0].kind, ws[0].name)
			}
		}
	}
}

func checkAttribution(t *testing.T, cl *cluster, cs []container) {
	sts := cl.statefulSets["postback-attribution"]
	if sts == nil {
		t.Fatal("no StatefulSet postback-attribution")
	}
	svc := cl.services[sts.Spec.ServiceName]
	if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("serviceName %q is not a headless Service", sts.Spec.ServiceName)
	} else if ws := cl.selects(labels.SelectorFromSet(svc.Spec.Selector)); len(ws) != 1 || ws[0].name != sts.Name {
		t.Errorf("headless Service %s does not select the StatefulSet's pods", svc.Name)
	}
	var c *container
	for i := range cs {
		if cs[i].w.name == sts.Name && cs[i].service == "attribution" {
			c = &cs[i]
		}
	}
	if c == nil {
		t.Fatal("the StatefulSet runs no attribution container")
	}
	// Its state on its own volume, at the state_dir it is configured with.
	stateDir := c.cfg["state_dir"]
	var onClaim bool
	for _, m := range c.c.VolumeMounts {
		for _, vct := range sts.Spec.VolumeClaimTemplates {
			if m.Name == vct.Name && path.Clean(m.MountPath) == path.Clean(stateDir) && !m.ReadOnly {
				onClaim = true
			}
		}
	}
	if !onClaim {
		t.Errorf("state_dir %q is not a writable mount of a volumeClaimTemplate", stateDir)
	}
	// join.instance_id is the pod name: stable across restarts, unique.
	if got := c.env["POSTBACK_JOIN_INSTANCE_ID"]; got != "fieldRef:metadata.name" {
		t.Errorf("POSTBACK_JOIN_INSTANCE_ID is %q, want the pod name (fieldRef metadata.name)", got)
	}
	// Memory (docs/attribution.md "Sizing"): the block cache plus two 4 MiB
	// memtables per store, one store per stage (clickid, device, ipua,
	// events) and partition. The limit covers a pod that owns every
	// partition, the request its share.
	const stages, perStore = 4, 2 * 4 << 20
	cache, err := strconv.ParseInt(c.cfg["join.cache_size"], 10, 64)
	if err != nil {
		t.Fatalf("join.cache_size: %v", err)
	}
	// The partitions of the topics bootstrap creates, which attribution's
	// internal topics copy.
	partitions := int64(0)
	for _, b := range cs {
		if b.service == "postbackctl" {
			n, err := strconv.ParseInt(b.cfg["kafka.topics.partitions"], 10, 64)
			if err != nil {
				t.Fatalf("%s: kafka.topics.partitions: %v", b, err)
			}
			partitions = max(partitions, n)
		}
	}
	if partitions == 0 {
		t.Fatal("no postbackctl container gives kafka.topics.partitions")
	}
	replicas := int64(ptrOr(sts.Spec.Replicas, 1))
	share := int64(math.Ceil(float64(partitions) / float64(replicas)))
	for _, x := range []struct {
		what string
		got  resource.Quantity
		want int64
	}{
		{"limit", c.c.Resources.Limits[corev1.ResourceMemory], cache + stages*partitions*perStore},
		{"request", c.c.Resources.Requests[corev1.ResourceMemory], cache + stages*share*perStore},
	} {
		if x.got.Value() < x.want {
			t.Errorf("memory %s %s is below the state's %d MiB (cache %d MiB, %d partitions, %d replicas)",
				x.what, x.got.String(), x.want>>20, cache>>20, partitions, replicas)
		}
	}
}

func checkDisruptionAndScaling(t *testing.T, cl *cluster) {
	covered := map[string]int{}
	for _, p := range cl.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Errorf("PodDisruptionBudget %s: %v", p.Name, err)
			continue
		}
		ws := cl.selects(sel)
		if len(ws) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %d workloads, want 1", p.Name, len(ws))
		}
		for _, w := range ws {
			covered[w.kind+"/"+w.name]++
		}
		if (p.Spec.MaxUnavailable == nil) == (p.Spec.MinAvailable == nil) {
			t.Errorf("PodDisruptionBudget %s: want one of maxUnavailable and minAvailable", p.Name)
		}
	}
	for _, w := range cl.workloads() {
		if w.longRunning() && covered[w.kind+"/"+w.name] != 1 {
			t.Errorf("%s %s has %d PodDisruptionBudgets, want 1", w.kind, w.name, covered[w.kind+"/"+w.name])
		}
	}
	for _, h := range cl.hpas {
		ref := h.Spec.ScaleTargetRef
		d := cl.deployments[ref.Name]
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || d == nil {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %s %s, not a Deployment here", h.Name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		if minR := ptrOr(h.Spec.MinReplicas, 1); minR < 1 || minR > h.Spec.MaxReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: replicas %d..%d", h.Name, minR, h.Spec.MaxReplicas)
		}
		onCPU := false
		for _, m := range h.Spec.Metrics {
			if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
				onCPU = true
			}
		}
		if !onCPU {
			t.Errorf("HorizontalPodAutoscaler %s does not scale on CPU", h.Name)
		}
		// Utilization is relative to the request: without one the HPA does nothing.
		for _, c := range d.Spec.Template.Spec.Containers {
			if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
				t.Errorf("HorizontalPodAutoscaler %s: container %s has no CPU request", h.Name, c.Name)
			}
		}
	}
}

// checkBootstrap checks that the Job creates topics and tables first, then
// publishes campaigns from a file the image or a mount provides, as
// `make up` does.
func checkBootstrap(t *testing.T, cl *cluster, cs []container, img deploy.Image) {
	var bootstrap, campaigns []container
	for _, c := range cs {
		if c.w.kind != "Job" {
			continue
		}
		args := c.c.Command
		switch {
		case len(args) > 1 && args[0] == "postbackctl" && args[1] == "bootstrap":
			bootstrap = append(bootstrap, c)
		case len(args) > 3 && args[0] == "postbackctl" && args[1] == "campaigns" && args[2] == "apply":
			campaigns = append(campaigns, c)
			file := args[3]
			if _, err := cl.fileContent(c.w.pod, c.c, file); err != nil && !img.Holds(file) {
				t.Errorf("%s: applies %s, which neither the image (%s) nor a mount holds", c, file, dockerfilePath)
			}
		}
	}
	if len(bootstrap) != 1 || len(campaigns) != 1 {
		t.Fatalf("%d bootstrap and %d campaigns apply steps, want one each", len(bootstrap), len(campaigns))
	}
	// Init containers run to completion, in order, before the containers.
	if !bootstrap[0].init || campaigns[0].init || bootstrap[0].w.name != campaigns[0].w.name {
		t.Errorf("bootstrap (%s) must be an init container of the Job that runs campaigns apply (%s)", bootstrap[0], campaigns[0])
	}
}

// checkBase checks that the base runs against a plaintext dev cluster and
// that its placeholder tokens cannot be used.
func checkBase(t *testing.T, cl *cluster, cs []container) {
	for _, c := range cs {
		for key, v := range c.cfg {
			if (strings.HasPrefix(key, "kafka.tls.") || strings.HasPrefix(key, "kafka.sasl.") ||
				strings.HasPrefix(key, "clickhouse.tls.")) && v != "" && v != "false" {
				t.Errorf("%s: %s = %q in the base; TLS and SASL belong in overlays/secured", c, key, v)
			}
		}
		for name := range c.env {
			if strings.Contains(name, "_TLS_") || strings.Contains(name, "_SASL_") {
				t.Errorf("%s: %s in the base; TLS and SASL belong in overlays/secured", c, name)
			}
		}
	}
	s := cl.secrets["postback-secrets"]
	if s == nil {
		t.Fatal("no Secret postback-secrets")
	}
	n := 0
	for key, v := range s.StringData {
		if !strings.HasPrefix(key, "ingest-tokens-") {
			continue
		}
		n++
		for _, tok := range strings.Fields(v) {
			if len(tok) >= 16 {
				t.Errorf("Secret key %s: placeholder %q is a token ingest accepts (16+ characters); an unedited base would accept it", key, tok)
			}
		}
	}
	if n == 0 {
		t.Error("the Secret has no ingest-tokens-* placeholders")
	}
}

// checkSecured checks that every container of the secured overlay talks
// TLS and SASL to Kafka, and TLS to ClickHouse where it uses it.
func checkSecured(t *testing.T, cs []container) {
	for _, c := range cs {
		want := map[string]string{
			"POSTBACK_KAFKA_TLS_ENABLED":        "true",
			"POSTBACK_KAFKA_TLS_CA_FILE":        "",
			"POSTBACK_KAFKA_SASL_MECHANISM":     "",
			"POSTBACK_KAFKA_SASL_USERNAME":      "",
			"POSTBACK_KAFKA_SASL_PASSWORD_FILE": "",
		}
		if _, ok := c.cfg["clickhouse.addr"]; ok {
			want["POSTBACK_CLICKHOUSE_TLS_ENABLED"] = "true"
			want["POSTBACK_CLICKHOUSE_TLS_CA_FILE"] = ""
		}
		for name, value := range want {
			got, ok := c.env[name]
			if !ok || got == "" || (value != "" && got != value) {
				t.Errorf("%s: %s = %q, want %s", c, name, got, map[bool]string{true: "non-empty", false: strconv.Quote(value)}[value == ""])
			}
		}
	}
}

func TestStrictDecodingRejectsMisspeltFields(t *testing.T) {
	const good = `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: x
          image: postback
          ports: [{containerPort: 8080}]
`
	if _, _, err := decode([]byte(good)); err != nil {
		t.Fatalf("a valid Deployment: %v", err)
	}
	for name, bad := range map[string]string{
		"misspelt field":        strings.Replace(good, "containerPort:", "containerPorts:", 1),
		"field in another case": strings.Replace(good, "containerPort:", "containerport:", 1),
		"field misplaced":       strings.Replace(good, "image: postback", "image: postback\n          replicas: 2", 1),
		"wrong value type":      strings.Replace(good, "8080", "http", 1),
		"duplicate field":       strings.Replace(good, "image: postback", "image: postback\n          image: other", 1),
		"unexpected kind":       strings.Replace(good, "kind: Deployment", "kind: DaemonSet", 1),
		"old API version":       strings.Replace(good, "apps/v1", "apps/v1beta1", 1),
	} {
		if _, _, err := decode([]byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestEveryManifestFileIsBuilt checks that each YAML file here is a
// kustomization or is used by one (a resource, a patch, a generator's
// file), so that TestManifests, which checks what the builds produce, sees
// it.
func TestEveryManifestFileIsBuilt(t *testing.T) {
	used := map[string]bool{}
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return nil
		}
		if filepath.Base(p) != "kustomization.yaml" {
			files = append(files, p)
			return nil
		}
		dir := filepath.Dir(p)
		k := readKustomization(t, p)
		var refs []string
		refs = append(refs, k.Resources...)
		for _, pt := range k.Patches {
			refs = append(refs, pt.Path)
		}
		for _, g := range k.ConfigMapGenerator {
			refs = append(refs, g.FileSources...)
		}
		for _, g := range k.SecretGenerator {
			refs = append(refs, g.FileSources...)
		}
		for _, r := range refs {
			if r == "" {
				continue
			}
			if _, file, ok := strings.Cut(r, "="); ok { // key=path
				r = file
			}
			used[filepath.Join(dir, r)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifest files found")
	}
	for _, f := range files {
		if !used[f] {
			t.Errorf("%s is in no kustomization, so no build checks it", f)
		}
	}
}
