// Enqueues one Flotilla job with plain Redis commands (go-redis, no client library) and waits for its result.
// Run (build where Go exists): cd examples/go && go mod tidy && go run . [TYPE] [PAYLOAD_JSON]
//
// `go mod tidy` writes the go.sum that `go run` needs; it is not committed here.
// TYPE defaults to `sleep`, PAYLOAD_JSON to '{"ms": 100}'. Environment: FLOTILLA_REDIS_URL
// (redis://127.0.0.1:6379), FLOTILLA_QUEUE (default), FLOTILLA_NAMESPACE (flotilla),
// FLOTILLA_WAIT_SECONDS (30). Exit 0: completed, the result JSON on stdout. Exit 1: dead or
// cancelled, the error on stderr. Exit 2: still unfinished when the wait ran out. Exit 3: Redis
// could not be reached or refused a command.
// The job gets an id of its own and is looked up by it as docs/PROTOCOL.md says: its record,
// when it has one, else its id key (which holds binary data while a retry waits; a Go string
// holds it as it is); once the job completed the key is gone and the queue's `done_ids` set
// says from which millisecond its completion is in `done`.
// The keys and fields are those of docs/PROTOCOL.md.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// `done` entries read per XRANGE while looking for a completion, and how many such reads at
// most: Flotilla's own readers look among 10 000 completions.
const (
	donePage  = 1000
	donePages = 10
)

func main() {
	os.Exit(run())
}

func run() int {
	jobType, payload := "sleep", `{"ms": 100}`
	if len(os.Args) > 1 {
		jobType = os.Args[1]
	}
	if len(os.Args) > 2 {
		payload = os.Args[2]
	}
	url := envOr("FLOTILLA_REDIS_URL", "redis://127.0.0.1:6379")
	queue := envOr("FLOTILLA_QUEUE", "default")
	namespace := envOr("FLOTILLA_NAMESPACE", "flotilla")
	waitSeconds, err := strconv.ParseFloat(envOr("FLOTILLA_WAIT_SECONDS", "30"), 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FLOTILLA_WAIT_SECONDS: %v\n", err)
		return 3
	}

	opt, err := redis.ParseURL(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FLOTILLA_REDIS_URL: %v\n", err)
		return 3
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()

	// An id of our own lets us find the job by it; without one the job's id would be its
	// entry id, and its completion would have to be searched for in the queue's `done` stream.
	jobID := uuid4()
	if err := rdb.SAdd(ctx, namespace+":{global}:queues", queue).Err(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 3
	}
	err = rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: namespace + ":{" + queue + "}:q",
		Values: []string{"id", jobID, "type", jobType, "payload", payload},
	}).Err()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return 3
	}
	fmt.Fprintf(os.Stderr, "enqueued %s job %s on queue %s\n", jobType, jobID, queue)

	// Where the protocol keeps the job: its record, which leads whenever there is one (a job
	// gets one when it dies, or it is handed back, reports progress or is cancelled); else
	// its id key: the id of the stream entry carrying it while it is ready or runs,
	// `scheduled …` or `failed …` while it waits in `later` for its time or a retry (the
	// rest is the entry it becomes, packed with MessagePack). Once it completed the key is
	// gone and `done_ids` scores the id by the millisecond from which its completion, with
	// the result, is in `done` (a key a protocol 2.7 worker wrote says `done <entry id>`).
	recordKey := namespace + ":{" + queue + "}:job:" + jobID
	idKey := namespace + ":{" + queue + "}:id:" + jobID
	doneIDs := namespace + ":{" + queue + "}:done_ids"
	doneStream := namespace + ":{" + queue + "}:done"
	deadline := time.Now().Add(time.Duration(waitSeconds * float64(time.Second)))
	status := "pending" // until a worker has read the entry, there is neither a record nor an id key
	for time.Now().Before(deadline) {
		record, err := rdb.HGetAll(ctx, recordKey).Result()
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			return 3
		}
		if s, ok := record["status"]; ok {
			status = s
			switch status {
			case "completed":
				printResult(record["result"])
				return 0
			case "dead", "cancelled":
				fmt.Fprintf(os.Stderr, "job %s %s: %s\n", jobID, status, record["error"])
				return 1
			}
		} else {
			held, err := rdb.Get(ctx, idKey).Result()
			switch {
			case err == redis.Nil:
				// No key: completed if `done_ids` has the id, else not read by a worker yet.
				since, err := rdb.ZScore(ctx, doneIDs, jobID).Result()
				if err == redis.Nil {
					break
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "error: %v\n", err)
					return 3
				}
				result, found, err := completion(ctx, rdb, doneStream, jobID, int64(since))
				if err != nil {
					fmt.Fprintf(os.Stderr, "error: %v\n", err)
					return 3
				}
				if found {
					printResult(result)
					return 0
				}
			case err != nil:
				fmt.Fprintf(os.Stderr, "error: %v\n", err)
				return 3
			case strings.HasPrefix(held, "done "):
				doneID := strings.TrimPrefix(held, "done ")
				completions, err := rdb.XRange(ctx, doneStream, doneID, doneID).Result()
				if err != nil {
					fmt.Fprintf(os.Stderr, "error: %v\n", err)
					return 3
				}
				if len(completions) > 0 {
					result, _ := completions[0].Values["result"].(string)
					printResult(result)
					return 0
				}
			case strings.HasPrefix(held, "scheduled "):
				status = "scheduled"
			case strings.HasPrefix(held, "failed "):
				status = "failed, its retry waiting"
			default:
				status = "pending or running" // its entry waits on the stream, or a worker has it
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "job %s still %s after %g s\n", jobID, status, waitSeconds)
	return 2
}

// completion is the result of the job's completion in `done`, at or after the
// millisecond its `done_ids` score names; found is false when it is not there. An entry
// may hold several completions (a worker's batch), each a run of fields that begins with
// `id`, so entries are read as Redis sends them: go-redis's XRange makes a map of an
// entry's fields, which keeps only the last `id`.
func completion(ctx context.Context, rdb *redis.Client, doneStream, jobID string, sinceMs int64) (string, bool, error) {
	start := strconv.FormatInt(sinceMs, 10) + "-0"
	for read := 0; read < donePages; read++ {
		page, err := rdb.Do(ctx, "XRANGE", doneStream, start, "+", "COUNT", donePage).Slice()
		if err != nil {
			return "", false, err
		}
		last := ""
		for _, raw := range page {
			entry, ok := raw.([]interface{})
			if !ok || len(entry) != 2 {
				continue
			}
			last, _ = entry[0].(string)
			flat, _ := entry[1].([]interface{})
			if result, found := resultOf(flat, jobID); found {
				return result, true, nil
			}
		}
		if len(page) < donePage {
			return "", false, nil
		}
		start = "(" + last // exclusive: on past the last entry read
	}
	return "", false, nil
}

// resultOf is the `result` of jobID's completion among an entry's fields, in order;
// found is false when the entry holds no completion of jobID. A completion without a
// `result` returned nothing.
func resultOf(flat []interface{}, jobID string) (result string, found bool) {
	for i := 0; i+1 < len(flat); i += 2 {
		name, _ := flat[i].(string)
		value, _ := flat[i+1].(string)
		switch {
		case name == "id" && found:
			return result, true // the next completion begins
		case name == "id":
			found = value == jobID
		case found && name == "result":
			result = value
		}
	}
	return result, found
}

// printResult prints a completed job's result JSON.
func printResult(result string) {
	if result == "" {
		result = "null" // a handler that returns nothing leaves it empty
	}
	fmt.Println(result)
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// uuid4 is a random (version 4) UUID, made here so the example needs no other module.
func uuid4() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
