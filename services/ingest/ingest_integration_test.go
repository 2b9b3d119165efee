//go:build integration

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adtrack/postback/pkg/campaign"
	"github.com/adtrack/postback/pkg/campaigntopic"
	"github.com/adtrack/postback/pkg/event"
	"github.com/adtrack/postback/pkg/ingest"
	"github.com/adtrack/postback/pkg/kafkaconn"
	"github.com/adtrack/postback/pkg/servicecfg"
	"github.com/adtrack/postback/pkg/telemetry"
	"github.com/adtrack/postback/pkg/testenv"
	"github.com/adtrack/postback/pkg/topics"
)

const token = "integration-token-0123456789"

func testConfig(brokers []string, topics topics.Config) servicecfg.Ingest {
	cfg := servicecfg.DefaultIngest()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.Topics = topics
	cfg.Ingest.Sources = map[string]ingest.Source{"generic": {Tokens: []string{token}}, "appsflyer": {Tokens: []string{token}}}
	return cfg
}

// startInProcess runs pkg/ingest against brokers with campaigns published
// to the campaigns topic and followed as the service does.
func startInProcess(t *testing.T, cfg servicecfg.Ingest) (*httptest.Server, *telemetry.Telemetry) {
	t.Helper()
	cl, err := kgo.NewClient(ingest.ProducerOpts(kafkaconn.Plain(cfg.Kafka.Brokers), cfg.Ingest.Produce)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	camps, err := campaign.ParseYAML([]byte(`
campaigns:
  - {campaign_id: cpc, app_id: id123456789, platform: ios, media_source: net_int, cost_model: CPC, bid: "0.3", currency: USD,
     tracking_link: "https://app.appsflyer.com/id123456789?pid=net_int&clickid={click_id}"}
  - {campaign_id: cpm, app_id: id123456789, platform: ios, media_source: net_int, cost_model: CPM, bid: "5", currency: USD}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := campaigntopic.Publish(ctx, cl, cfg.Kafka.Topics.Campaigns, camps); err != nil {
		t.Fatal(err)
	}
	reg := campaign.NewRegistry()
	follow(t, cfg, reg)
	for !reg.Loaded() {
		if ctx.Err() != nil {
			t.Fatal("campaigns not loaded in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tel := telemetry.New()
	srv, err := ingest.New(cfg.Server(), cl, reg, tel, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs, tel
}

// follow runs a campaign follower filling reg from cfg's campaigns topic
// until the test ends.
func follow(t *testing.T, cfg servicecfg.Ingest, reg *campaign.Registry) {
	t.Helper()
	f := campaigntopic.NewFollower(reg, cfg.Kafka.Topics.Campaigns, discard())
	fctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { stop(); <-done })
	go func() { defer close(done); _ = f.Run(fctx, []kgo.Opt{kgo.SeedBrokers(cfg.Kafka.Brokers...)}) }()
}

var noRedirect = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, url string) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := noRedirect.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m
}

// TestEndpointsLandOnTheRightPartition checks, on the real broker, that each
// endpoint's record lands on its topic with the expected fields, and that an
// install carrying a click id lands on the same partition number as that
// click: the co-partitioning the attribution join relies on.
func TestEndpointsLandOnTheRightPartition(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 6)
	hs, _ := startInProcess(t, testConfig(brokers, topics))

	clickIDs := map[string]bool{}
	for i := 0; i < 12; i++ {
		code, _, m := get(t, hs.URL+fmt.Sprintf("/v1/click/cpc?s2s=1&ip=198.51.100.%d&ua=UA&site_id=s%d", i, i))
		if code != 200 {
			t.Fatalf("click: %d %v", code, m)
		}
		id := m["click_id"].(string)
		clickIDs[id] = true
		code, _, m = get(t, hs.URL+"/v1/postbacks/appsflyer/install?token="+token+"&clickid="+id+
			"&app_id=id123456789&install_unix_ts="+fmt.Sprint(time.Now().Unix())+"&country_code=US")
		if code != 200 {
			t.Fatalf("install: %d %v", code, m)
		}
	}
	if code, _, m := get(t, hs.URL+"/v1/impression/cpm?site_id=s1"); code != 204 {
		t.Fatalf("impression: %d %v", code, m)
	}
	if code, _, m := get(t, hs.URL+"/v1/postbacks/generic/event?token="+token+"&app_id=id123456789&event_name=purchase&event_time=1795853553&revenue=1&currency=USD&click_id=x"); code != 200 {
		t.Fatalf("event: %d %v", code, m)
	}
	if code, _, m := get(t, hs.URL+"/v1/postbacks/generic/event?token="+token+"&app_id=id123456789&event_name=purchase&event_time=yesterday"); code != 400 || m["field"] != "event_time" {
		t.Fatalf("malformed: %d %v", code, m)
	}

	clickPart := map[string]int32{}
	for _, r := range testenv.ReadAll(t, brokers, topics.Clicks) {
		var c event.Click
		if err := json.Unmarshal(r.Value, &c); err != nil {
			t.Fatal(err)
		}
		if !clickIDs[c.ClickID] || string(r.Key) != c.ClickID || c.Cost.String() != "0.3" || !c.S2S {
			t.Errorf("click record %s", r.Value)
		}
		clickPart[c.ClickID] = r.Partition
	}
	if len(clickPart) != 12 {
		t.Fatalf("%d clicks on %s, want 12", len(clickPart), topics.Clicks)
	}
	partitions := map[int32]bool{}
	installs := testenv.ReadAll(t, brokers, topics.InstallsRaw)
	if len(installs) != 12 {
		t.Fatalf("%d installs, want 12", len(installs))
	}
	for _, r := range installs {
		var in event.Install
		if err := json.Unmarshal(r.Value, &in); err != nil {
			t.Fatal(err)
		}
		want, ok := clickPart[in.ClickID]
		if !ok || r.Partition != want {
			t.Errorf("install for click %s on partition %d, click on %d", in.ClickID, r.Partition, want)
		}
		if in.MMP != "appsflyer" || in.Country != "US" || in.AppID != "id123456789" {
			t.Errorf("install record %s", r.Value)
		}
		partitions[r.Partition] = true
	}
	if len(partitions) < 2 {
		t.Errorf("12 click ids all hashed to one partition of 6: keys are not spread")
	}
	if n := len(testenv.ReadAll(t, brokers, topics.Impressions)); n != 1 {
		t.Errorf("%d impressions, want 1", n)
	}
	if n := len(testenv.ReadAll(t, brokers, topics.EventsRaw)); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
	rej := testenv.ReadAll(t, brokers, topics.Rejected)
	if len(rej) != 1 || !strings.Contains(string(rej[0].Value), `"field":"event_time"`) {
		t.Errorf("rejected topic: %d records", len(rej))
	}
}

// TestBrokerOutage stops a dedicated real broker under ingest: postbacks get
// 503 with Retry-After and /readyz fails; when the broker returns, ingest
// accepts again without a restart.
func TestBrokerOutage(t *testing.T) {
	b := testenv.StartBroker(t)
	brokers := b.Brokers()
	topics := testenv.Topics(t, brokers, 1)
	cfg := testConfig(brokers, topics)
	cfg.Ingest.Produce.Timeout = time.Second
	hs, _ := startInProcess(t, cfg)

	postback := func(i int) (int, http.Header) {
		code, h, _ := get(t, hs.URL+fmt.Sprintf("/v1/postbacks/generic/install?token=%s&app_id=id123456789&install_time=1795853553&event_id=o%d", token, i))
		return code, h
	}
	if code, _ := postback(1); code != 200 {
		t.Fatalf("before outage: %d", code)
	}
	b.Stop()
	code, h := postback(2)
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("broker down: %d Retry-After=%q, want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	if code, _, m := get(t, hs.URL+"/readyz"); code != 503 {
		t.Fatalf("/readyz with broker down: %d %v", code, m)
	}
	b.Start()
	deadline := time.Now().Add(60 * time.Second)
	for i := 3; ; i++ {
		if code, _ := postback(i); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ingest did not recover within 60s of the broker's return")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code, _, m := get(t, hs.URL+"/readyz"); code != 200 {
		t.Fatalf("/readyz after recovery: %d %v", code, m)
	}
}

// TestSIGTERMUnderLoad runs the real ingest binary, loads it from 32
// connections, sends SIGTERM mid-load, and checks that every postback it
// acknowledged with 200 is on Kafka and that it exited 0.
func TestSIGTERMUnderLoad(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 3)
	bin := filepath.Join(t.TempDir(), "ingest")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfgFile := filepath.Join(t.TempDir(), "ingest.yaml")
	if err := os.WriteFile(cfgFile, []byte("ingest:\n  sources:\n    generic: {tokens: [\""+token+"\"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgFile)
	cmd.Env = append(os.Environ(),
		"POSTBACK_HTTP_ADDR="+addr,
		"POSTBACK_KAFKA_BROKERS="+strings.Join(brokers, ","),
		"POSTBACK_KAFKA_TOPICS_INSTALLS_RAW="+topics.InstallsRaw,
		"POSTBACK_KAFKA_TOPICS_CAMPAIGNS="+topics.Campaigns,
		"POSTBACK_KAFKA_TOPICS_REJECTED="+topics.Rejected,
	)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		logs <- b.String()
	}()
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("ingest not ready in 30s:\n%s", <-logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		seq   atomic.Int64
		wg    sync.WaitGroup
		stop  atomic.Bool
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				n := seq.Add(1)
				resp, err := client.Get(fmt.Sprintf("%s/v1/postbacks/generic/install?token=%s&app_id=id123456789&install_time=1795853553&event_id=s%d", base, token, n))
				if err != nil {
					continue // refused once the listener closed
				}
				var m map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[m["event_id"].(string)] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Read the log to its end before Wait: Wait closes the pipe, and lines
	// still in it (the last ones, "ingest stopped cleanly") would be lost.
	out := <-logs
	werr := cmd.Wait()
	stop.Store(true)
	wg.Wait()
	if werr != nil {
		t.Fatalf("ingest exited with %v after SIGTERM:\n%s", werr, out)
	}
	if !strings.Contains(out, "ingest stopped cleanly") {
		t.Errorf("no clean-shutdown log line:\n%s", out)
	}
	if len(acked) < 50 {
		t.Fatalf("only %d postbacks acknowledged before SIGTERM; the load did not run", len(acked))
	}
	onKafka := map[string]bool{}
	for _, r := range testenv.ReadAll(t, brokers, topics.InstallsRaw) {
		var in event.Install
		if err := json.Unmarshal(r.Value, &in); err != nil {
			t.Fatal(err)
		}
		onKafka[in.EventID] = true
	}
	lost := 0
	for id := range acked {
		if !onKafka[id] {
			lost++
		}
	}
	t.Logf("acknowledged %d, on Kafka %d, lost %d", len(acked), len(onKafka), lost)
	if lost != 0 {
		t.Fatalf("%d acknowledged postbacks are not on Kafka", lost)
	}
}

// TestTouchesBeforeCampaignsLoad runs ingest on the real broker with a
// campaign on the campaigns topic and its registry not loaded yet: clicks
// and impressions of that campaign (and of unknown ones) get 503 with
// Retry-After, never 404, and /readyz fails naming campaigns. Once the
// follower has read the topic: 200, and 404 only for a campaign that is
// really unknown.
func TestTouchesBeforeCampaignsLoad(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 3)
	cfg := testConfig(brokers, topics)
	cl, err := kgo.NewClient(ingest.ProducerOpts(kafkaconn.Plain(brokers), cfg.Ingest.Produce)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	camps, err := campaign.ParseYAML([]byte("campaigns:\n  - {campaign_id: cpc, app_id: id123456789, platform: ios, media_source: net_int, cost_model: CPC, bid: '0.3', currency: USD}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := campaigntopic.Publish(ctx, cl, topics.Campaigns, camps); err != nil {
		t.Fatal(err)
	}
	reg := campaign.NewRegistry()
	srv, err := ingest.New(cfg.Server(), cl, reg, telemetry.New(), discard())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	for _, p := range []string{"/v1/click/cpc?s2s=1&ip=198.51.100.1", "/v1/impression/cpc", "/v1/click/nope"} {
		code, h, m := get(t, hs.URL+p)
		if code != 503 || h.Get("Retry-After") == "" {
			t.Errorf("%s before the campaigns loaded: %d %v Retry-After=%q, want 503 with Retry-After", p, code, m, h.Get("Retry-After"))
		}
	}
	if code, _, m := get(t, hs.URL+"/readyz"); code != 503 || !strings.Contains(fmt.Sprint(m["failing"]), "campaigns") {
		t.Errorf("/readyz before the campaigns loaded: %d %v", code, m)
	}

	follow(t, cfg, reg)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, m := get(t, hs.URL+"/v1/click/cpc?s2s=1&ip=198.51.100.2")
		if code == 200 {
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("click while the follower loads: %d %v (only 503 until loaded, then 200)", code, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _, m := get(t, hs.URL+"/v1/click/nope"); code != 404 || m["field"] != "campaign_id" {
		t.Errorf("unknown campaign once loaded: %d %v", code, m)
	}
	if code, _, m := get(t, hs.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz once loaded: %d %v", code, m)
	}
}

// TestBinaryNever404sWhileLoading starts the real binary on a campaigns
// topic of a few thousand campaigns, the one clicked last, and clicks from
// the moment its port opens: every answer is 503 (registry loading) or
// 200, never 404, until the first 200.
func TestBinaryNever404sWhileLoading(t *testing.T) {
	brokers := testenv.Kafka(t)
	topics := testenv.Topics(t, brokers, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 20000
	camps := make([]event.Campaign, n)
	for i := range camps {
		camps[i] = event.Campaign{ID: fmt.Sprintf("c%05d", i), AppID: "id123456789", Platform: event.PlatformIOS, MediaSource: "net_int",
			CostModel: campaign.CPC, Bid: 300_000, Currency: "USD", TrackingLink: "https://app.appsflyer.com/id123456789?pid=net_int&clickid={click_id}"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := campaigntopic.Publish(ctx, cl, topics.Campaigns, camps); err != nil {
		t.Fatal(err)
	}
	last := camps[n-1].ID

	bin := filepath.Join(t.TempDir(), "ingest")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"POSTBACK_HTTP_ADDR="+addr,
		"POSTBACK_TELEMETRY_ADDR=",
		"POSTBACK_KAFKA_BROKERS="+strings.Join(brokers, ","),
		"POSTBACK_KAFKA_TOPICS_CLICKS="+topics.Clicks,
		"POSTBACK_KAFKA_TOPICS_CAMPAIGNS="+topics.Campaigns,
	)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	codes := map[int]int{}
	url := "http://" + addr + "/v1/click/" + last + "?s2s=1&ip=198.51.100.3"
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[resp.StatusCode]++
			if resp.StatusCode == 200 {
				break
			}
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("campaign %s while ingest starts: %d %s (answers so far %v); want 503 with Retry-After until loaded", last, resp.StatusCode, body, codes)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 200 within 60s of starting ingest: %v", codes)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("answers from the first connection to the first 200: %v", codes)
	if codes[503] == 0 {
		t.Errorf("no 503 seen: the %d campaigns loaded before the listener answered, so the window went untested", n)
	}
}
