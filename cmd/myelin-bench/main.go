// Command myelin-bench measures a Matrix homeserver through the
// Client-Server API only, so the same run can compare Myelin with Synapse,
// Dendrite or Conduit on one machine; the fed_* scenarios measure two
// homeservers that federate with each other (-url and -url2) the same way.
// It registers its own users (through the shared-secret admin API when
// -shared-secret is given, else open registration with m.login.dummy),
// runs the scenarios named by -run with sizes from flags, and writes the
// figures as JSON to -out.
//
//	myelin-bench -url http://127.0.0.1:8008 -pid $(pidof myelin) -out bench.json
//	myelin-bench -url http://127.0.0.1:8008 -url2 http://127.0.0.1:8018 -run fed_delivery,fed_join,fed_throughput
//	myelin-bench -url http://127.0.0.1:8008 -url2 http://127.0.0.1:8018 -pid2 SECOND_SERVER_PID -run fed_drain
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "myelin-bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("myelin-bench", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8008", "client API base URL of the homeserver")
	secret := fs.String("shared-secret", "", "registration shared secret (else open registration is used)")
	pid := fs.Int("pid", 0, "the server's process ID, to report its resident memory (local servers only)")
	pid2 := fs.Int("pid2", 0, "fed_drain: the second server's process ID, which the scenario stops and resumes (local servers only)")
	out := fs.String("out", "bench-cs.json", "file the JSON figures are written to")
	scenarios := fs.String("run", "send,delivery,fanout,initial_sync,messages,create_rooms,join,held,media", "comma-separated scenarios")
	senders := fs.Int("senders", 10, "send: concurrent senders")
	sendTotal := fs.Int("send-messages", 2000, "send: messages in all")
	deliveryN := fs.Int("delivery-messages", 200, "delivery: messages")
	deliveryRate := fs.Float64("delivery-rate", 20, "delivery: messages per second")
	fanoutMembers := fs.Int("fanout-members", 200, "fanout: room members, each long-polling")
	fanoutRounds := fs.Int("fanout-rounds", 5, "fanout: messages")
	syncRooms := fs.Int("sync-rooms", 100, "initial_sync: rooms")
	syncMessages := fs.Int("sync-messages", 20, "initial_sync: messages per room")
	history := fs.Int("history", 1000, "messages: events in the paginated room")
	passes := fs.Int("passes", 5, "messages: full backward paginations")
	createN := fs.Int("create-rooms", 200, "create_rooms: rooms")
	joinSizes := fs.String("join-sizes", "10,1000", "join: member counts of the joined rooms")
	base2 := fs.String("url2", "", "fed_*: client API base URL of the second homeserver, which federates with the first")
	fedDeliveryN := fs.Int("fed-delivery-messages", 200, "fed_delivery: messages")
	fedDeliveryRate := fs.Float64("fed-delivery-rate", 20, "fed_delivery: messages per second")
	fedJoinMembers := fs.Int("fed-join-members", 1000, "fed_join: members of the room on the first server")
	fedSenders := fs.Int("fed-senders", 20, "fed_throughput, fed_drain: concurrent senders on the first server")
	fedMessages := fs.Int("fed-messages", 5000, "fed_throughput, fed_drain: messages in all")
	held := fs.Int("held", 5000, "held: long-polling /sync connections")
	heldUsers := fs.Int("held-users", 50, "held: users the connections are spread over")
	mediaMiB := fs.Int("media-mib", 10, "media: size of each uploaded file in MiB")
	mediaRounds := fs.Int("media-rounds", 10, "media: files uploaded and downloaded")
	mediaPhotos := fs.Int("media-photos", 3, "media: 12-megapixel photos thumbnailed")
	settle := fs.Duration("settle", 5*time.Second, "with -pid: how long the server is left idle before the held scenario's first memory reading, and after the run (its clients disconnected) before the settled one")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// Enough connections for the held long-polls, kept alive between requests.
	transport := &http.Transport{MaxIdleConns: *held + 100, MaxIdleConnsPerHost: *held + 100,
		IdleConnTimeout: 90 * time.Second}
	c := &client{base: strings.TrimRight(*base, "/"), secret: *secret,
		http: &http.Client{Transport: transport, Timeout: 2 * time.Minute}}
	b := &bench{c: c, run: "bench" + strconv.FormatInt(time.Now().Unix()%1000000, 36)}
	var b2 *bench // the second server's, for the fed_* scenarios
	if *base2 != "" {
		b2 = &bench{c: &client{base: strings.TrimRight(*base2, "/"), secret: *secret, http: c.http}, run: b.run + "r"}
	}
	ctx := context.Background()

	report := map[string]any{
		"url": *base, "url2": *base2, "started": time.Now().UTC().Format(time.RFC3339),
		"client_machine": map[string]any{"cpus": runtime.NumCPU(), "goos": runtime.GOOS},
	}
	results := map[string]any{}
	for _, name := range strings.Split(*scenarios, ",") {
		var f figures
		var err error
		t0 := time.Now()
		if strings.HasPrefix(strings.TrimSpace(name), "fed_") && b2 == nil {
			return fmt.Errorf("-run %s: the federation scenarios need -url2", name)
		}
		switch strings.TrimSpace(name) {
		case "send":
			f, err = b.sendThroughput(ctx, *senders, *sendTotal)
		case "delivery":
			f, err = b.syncDelivery(ctx, *deliveryN, *deliveryRate)
		case "fanout":
			f, err = b.fanout(ctx, *fanoutMembers, *fanoutRounds)
		case "initial_sync":
			f, err = b.initialSync(ctx, *syncRooms, *syncMessages)
		case "messages":
			f, err = b.messagesPages(ctx, *history, *passes)
		case "create_rooms":
			f, err = b.createRooms(ctx, *createN)
		case "join":
			joins := figures{}
			for _, s := range strings.Split(*joinSizes, ",") {
				n, perr := strconv.Atoi(strings.TrimSpace(s))
				if perr != nil {
					return fmt.Errorf("-join-sizes: %q is not a number", s)
				}
				var jf figures
				if jf, err = b.joinCost(ctx, n); err != nil {
					break
				}
				joins[strconv.Itoa(n)+"_members"] = jf
			}
			f = joins
		case "fed_delivery":
			f, err = b.fedDelivery(ctx, b2, *fedDeliveryN, *fedDeliveryRate)
		case "fed_join":
			f, err = b.fedJoin(ctx, b2, *fedJoinMembers)
		case "fed_throughput":
			f, err = b.fedThroughput(ctx, b2, *fedSenders, *fedMessages)
		case "fed_drain":
			f, err = b.fedDrain(ctx, b2, *pid, *pid2, *fedSenders, *fedMessages)
		case "held":
			f, err = b.heldConnections(ctx, *held, *heldUsers, *pid, *settle)
		case "media":
			f, err = b.mediaThroughput(ctx, *mediaMiB, *mediaRounds, *mediaPhotos)
		default:
			return fmt.Errorf("-run: unknown scenario %q", name)
		}
		if err != nil {
			results[name] = map[string]any{"error": err.Error()}
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			continue
		}
		f["scenario_seconds"] = time.Since(t0).Seconds()
		results[name] = f
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, f)
	}
	report["scenarios"] = results
	if *pid > 0 {
		// At once, with the last scenario's clients just gone; then
		// after the server has had time to notice and collect.
		report["server_rss_end_kb"] = rssKB(*pid)
		transport.CloseIdleConnections()
		time.Sleep(*settle)
		report["server_rss_settled_kb"] = rssKB(*pid)
	}
	data, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(data, '\n'), 0o644)
}
