package deploy

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/adtrack/postback/deploy/configref"
)

const (
	composeFile   = "docker-compose.yml"
	referencePath = "../docs/configuration.md"
)

// loadCompose loads the compose file in dir as `docker compose` does, with
// the compose-spec schema validation and consistency checks on.
func loadCompose(t *testing.T, dir string, content []byte) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, composeFile), Content: content}},
		Environment: types.Mapping{},
	}
	return loader.LoadWithContext(t.Context(), details, func(o *loader.Options) {
		o.SetProjectName("postback", true)
	})
}

func TestComposeLoaderValidates(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelt service key": "services:\n  a:\n    imagee: x\n",
		"unknown condition":    "services:\n  a:\n    image: x\n    depends_on:\n      b: {condition: service_done}\n  b:\n    image: x\n",
		"missing dependency":   "services:\n  a:\n    image: x\n    depends_on: [b]\n",
	} {
		if _, err := loadCompose(t, t.TempDir(), []byte(doc)); err == nil {
			t.Errorf("%s: loaded without error", name)
		}
	}
}

// pipelineService is a compose service that runs one of the image's
// binaries, with the configuration it runs with.
type pipelineService struct {
	name    string
	svc     types.ServiceConfig
	binary  string            // its section of the config reference
	env     map[string]string // its POSTBACK_* and other env vars
	file    []byte            // its --config file, nil without one
	cfg     map[string]string // defaults, file, env and flags layered
	flagErr []string          // flags that are no key of the binary
}

func TestCompose(t *testing.T) {
	ref, err := configref.Load(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ReadDockerfile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadCompose(t, "..", nil)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}

	for _, name := range []string{"kafka", "clickhouse", "bootstrap", "campaigns", "ingest", "attribution", "sink", "forwarder"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("no service %s", name)
		}
	}
	for name, s := range p.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: neither image nor build", name)
		}
	}
	for _, name := range []string{"kafka", "clickhouse"} {
		s := p.Services[name]
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s: no health check; its dependents wait for service_healthy", name)
		}
	}
	wantDeps := map[string]map[string]string{
		"bootstrap":   {"kafka": types.ServiceConditionHealthy, "clickhouse": types.ServiceConditionHealthy},
		"campaigns":   {"bootstrap": types.ServiceConditionCompletedSuccessfully},
		"ingest":      {"bootstrap": types.ServiceConditionCompletedSuccessfully},
		"attribution": {"bootstrap": types.ServiceConditionCompletedSuccessfully},
		"sink":        {"bootstrap": types.ServiceConditionCompletedSuccessfully},
		"forwarder":   {"bootstrap": types.ServiceConditionCompletedSuccessfully},
	}
	for name, deps := range wantDeps {
		for dep, cond := range deps {
			if got := p.Services[name].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s: depends on %s with condition %q, want %q", name, dep, got, cond)
			}
		}
	}

	ps := pipelineServices(t, p, ref)
	if len(ps) != 6 {
		t.Errorf("%d services run the image's binaries, want 6 (bootstrap, campaigns, ingest, attribution, sink, forwarder)", len(ps))
	}
	for _, s := range ps {
		checkPipelineService(t, p, s, ref, img)
	}
	checkShared(t, p, ps)
	checkBootstrapSteps(t, ps, img)
}

// pipelineServices returns the services built from deploy/docker/Dockerfile,
// each with its effective configuration.
func pipelineServices(t *testing.T, p *types.Project, ref *configref.Reference) []pipelineService {
	t.Helper()
	var out []pipelineService
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		if svc.Build == nil {
			continue
		}
		if len(svc.Command) == 0 {
			t.Errorf("%s: no command: the image has no entrypoint", name)
			continue
		}
		s := pipelineService{name: name, svc: svc, binary: svc.Command[0], env: map[string]string{}}
		for k, v := range svc.Environment {
			if v != nil {
				s.env[k] = *v
			}
		}
		if cfgPath := configref.FlagValue(svc.Command, "config"); cfgPath != "" {
			src, ok := bindSource(svc, cfgPath)
			if !ok {
				t.Errorf("%s: --config %s is on no bind mount", name, cfgPath)
				continue
			}
			data, err := os.ReadFile(src)
			if err != nil {
				t.Errorf("%s: config file: %v", name, err)
				continue
			}
			s.file = data
		}
		cfg, err := ref.Effective(s.binary, s.file, s.env)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// Flags override everything else.
		args := svc.Command[1:]
		for i := 0; i < len(args); i++ {
			key, ok := strings.CutPrefix(args[i], "--")
			if !ok {
				continue
			}
			key, value, inline := strings.Cut(key, "=")
			if !inline && i+1 < len(args) {
				i++
				value = args[i]
			}
			if key == "config" || (key == "wait" && s.binary == "postbackctl") {
				continue
			}
			if _, ok := ref.Key(s.binary, key); !ok {
				s.flagErr = append(s.flagErr, key)
			}
			cfg[key] = value
		}
		s.cfg = cfg
		out = append(out, s)
	}
	return out
}

// bindSource returns the host file a bind mount of svc puts at path.
func bindSource(svc types.ServiceConfig, path string) (string, bool) {
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if v.Target == path {
			return v.Source, true
		}
		if rel, ok := strings.CutPrefix(path, strings.TrimSuffix(v.Target, "/")+"/"); ok {
			return filepath.Join(v.Source, rel), true
		}
	}
	return "", false
}

func checkPipelineService(t *testing.T, p *types.Project, s pipelineService, ref *configref.Reference, img Image) {
	binaries, err := os.ReadDir("../services")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(binaries, func(e os.DirEntry) bool { return e.IsDir() && e.Name() == s.binary }) {
		t.Errorf("%s: runs %q, which the image does not build (./services/...)", s.name, s.binary)
		return
	}
	for k := range s.env {
		if strings.HasPrefix(k, "POSTBACK_") {
			if err := ref.CheckEnv(s.binary, k); err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
		}
	}
	if s.file != nil {
		if err := ref.CheckYAML(s.binary, s.file); err != nil {
			t.Errorf("%s: config file: %v", s.name, err)
		}
	}
	for _, k := range s.flagErr {
		t.Errorf("%s: flag --%s is not a key of %s in the config reference", s.name, k, s.binary)
	}
	// A named volume's mount point must be the nonroot user's in the image,
	// or the service cannot write there.
	if img.User != "" && img.User != "root" {
		for _, v := range s.svc.Volumes {
			if v.Type == types.VolumeTypeVolume && !v.ReadOnly && !img.OwnsDir(v.Target) {
				t.Errorf("%s: named volume at %s, which the image does not give its user %s", s.name, v.Target, img.User)
			}
		}
	}
	if s.binary == "postbackctl" {
		return
	}
	// A long-running service listens on all interfaces (other containers
	// and the published port reach it there, not on loopback) and publishes
	// the port of /healthz, /readyz and /metrics.
	key := "telemetry.addr"
	if s.binary == "ingest" {
		key = "http.addr"
	}
	host, portText, err := net.SplitHostPort(s.cfg[key])
	if err != nil {
		t.Errorf("%s: %s = %q: %v", s.name, key, s.cfg[key], err)
		return
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s: %s = %q: loopback in a container is unreachable from outside it", s.name, key, s.cfg[key])
	}
	port, _ := strconv.ParseUint(portText, 10, 32)
	if !slices.ContainsFunc(s.svc.Ports, func(pc types.ServicePortConfig) bool { return uint64(pc.Target) == port }) {
		t.Errorf("%s: serves /readyz on %s but publishes no port %d", s.name, s.cfg[key], port)
	}
	if s.binary == "attribution" {
		dir := filepath.Clean(s.cfg["state_dir"])
		if !slices.ContainsFunc(s.svc.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && filepath.Clean(v.Target) == dir
		}) {
			t.Errorf("%s: state_dir %s is not on a named volume: the state would go with the container", s.name, dir)
		}
	}
}

// checkShared checks that the pipeline services agree on the shared keys (configref.SharedKey),
// with hosts that are services of the project.
func checkShared(t *testing.T, p *types.Project, ps []pipelineService) {
	first := map[string]pipelineService{}
	for _, s := range ps {
		for key, v := range s.cfg {
			if !configref.SharedKey(key, s.binary) {
				continue
			}
			if f, seen := first[key]; !seen {
				first[key] = s
			} else if f.cfg[key] != v {
				t.Errorf("%s: %s = %q, but %s has %q", s.name, key, v, f.name, f.cfg[key])
			}
			if key == "kafka.brokers" || key == "clickhouse.addr" {
				for _, addr := range strings.Split(v, ",") {
					host, _, err := net.SplitHostPort(addr)
					if _, isService := p.Services[host]; err != nil || !isService {
						t.Errorf("%s: %s = %q: not a host:port of a service of the project", s.name, key, v)
					}
				}
			}
		}
	}
}

// checkBootstrapSteps checks that bootstrap creates topics and tables and
// campaigns then publishes the example campaigns, as `make up` does.
func checkBootstrapSteps(t *testing.T, ps []pipelineService, img Image) {
	for _, s := range ps {
		args := s.svc.Command
		switch s.name {
		case "bootstrap":
			if len(args) < 2 || args[0] != "postbackctl" || args[1] != "bootstrap" {
				t.Errorf("bootstrap runs %v, want postbackctl bootstrap", args)
			}
		case "campaigns":
			if len(args) < 4 || args[0] != "postbackctl" || args[1] != "campaigns" || args[2] != "apply" {
				t.Errorf("campaigns runs %v, want postbackctl campaigns apply FILE", args)
				continue
			}
			if _, mounted := bindSource(s.svc, args[3]); !mounted && !img.Holds(args[3]) {
				t.Errorf("campaigns applies %s, which neither the image nor a bind mount holds", args[3])
			}
		}
	}
}
