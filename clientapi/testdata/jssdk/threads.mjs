// matrix-js-sdk against a Myelin server (run by clientapi/jssdk_test.go):
// two users chat, one edits a message and both reply in a thread; then a
// fresh client of the second user, with thread support, must get from the
// server alone what it shows:
//   - the edit applied to the original (the bundled m.replace of GET /event),
//     without ever fetching the edit itself;
//   - the thread's summary (reply count, latest reply, participation) from
//     the root's bundled m.thread;
//   - the thread in the room's thread list (GET /v1/rooms/{roomId}/threads),
//     for "all" and "my" threads;
//   - a reply sent afterwards arriving through /sync into that thread.
//
// Usage: node threads.mjs <client API base URL>. Exits non-zero on failure.

import { ClientEvent, createClient, Preset, ThreadEvent } from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

const baseUrl = process.argv[2];
if (!baseUrl) {
  console.error("usage: node threads.mjs <base URL>");
  process.exit(2);
}
logger.setLevel("error");

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok: " + what);
}

// waitUntil polls cond; on a timeout, state() describes what was seen.
async function waitUntil(what, cond, state = () => "", ms = 15000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${state()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// register creates an account through the client-server API (the dummy
// stage of user-interactive auth), as a new user would.
async function register(username, password) {
  const url = baseUrl + "/_matrix/client/v3/register";
  const body = { username, password, inhibit_login: true };
  let res = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  if (res.status === 401) {
    const { session } = await res.json();
    body.auth = { type: "m.login.dummy", session };
    res = await fetch(url, { method: "POST", body: JSON.stringify(body) });
  }
  if (res.status !== 200) throw new Error(`register ${username}: ${res.status} ${await res.text()}`);
}

// inFlight counts the requests (other than /sync) the clients await.
let inFlight = 0;

// login returns a client logged in as username; requests lists the paths
// it requested.
async function login(username, password, requests = []) {
  const fetchFn = async (input, init) => {
    const path = decodeURIComponent(new URL(input.toString()).pathname);
    requests.push(path);
    const long = path.endsWith("/sync");
    if (!long) inFlight++;
    let res;
    try {
      res = await fetch(input, init);
    } finally {
      if (!long) inFlight--;
    }
    // The client's sync does not start without push rules, which are not
    // what this test is about: while the server has no /pushrules (a 404
    // M_UNRECOGNIZED), the client gets an empty rule set, and says so.
    if (res.status === 404 && path === "/_matrix/client/v3/pushrules/") {
      console.log("note: the server has no /pushrules; the client uses none");
      return new Response(JSON.stringify({ global: {} }), { headers: { "content-type": "application/json" } });
    }
    return res;
  };
  const anon = createClient({ baseUrl, fetchFn });
  const res = await anon.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: username },
    password,
  });
  return createClient({
    baseUrl, fetchFn, userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id,
  });
}

const text = (body) => ({ msgtype: "m.text", body });
const suffix = Date.now().toString(36);
const password = "correct horse battery staple";
await register("alice" + suffix, password);
await register("bob" + suffix, password);
const alice = await login("alice" + suffix, password);
const bob = await login("bob" + suffix, password);

const { room_id: roomId } = await alice.createRoom({ preset: Preset.PublicChat, name: "js-sdk" });
await bob.joinRoom(roomId);

// The original, its edit, and a thread with replies from both users.
const { event_id: original } = await alice.sendMessage(roomId, text("a typo"));
const { event_id: edit } = await alice.sendEvent(roomId, "m.room.message", {
  ...text("* no typo"),
  "m.new_content": text("no typo"),
  "m.relates_to": { rel_type: "m.replace", event_id: original },
});
const { event_id: root } = await alice.sendMessage(roomId, text("shall we thread?"));
await bob.sendMessage(roomId, root, text("yes"));
await alice.sendMessage(roomId, root, text("good"));
const { event_id: lastReply } = await bob.sendMessage(roomId, root, text("threads work"));
// Enough main-timeline messages that the initial sync's timeline holds
// none of the above.
for (let i = 0; i < 20; i++) await alice.sendMessage(roomId, text("filler " + i));

// A fresh client of bob's with thread support.
const requests = [];
const fresh = await login("bob" + suffix, password, requests);
const prepared = new Promise((resolve, reject) => {
  fresh.on(ClientEvent.Sync, (state, _prev, data) => {
    if (state === "PREPARED") resolve();
    if (state === "ERROR") reject(data?.error ?? new Error("sync error"));
  });
});
await fresh.startClient({ initialSyncLimit: 5, threadSupport: true });
await prepared;
try {
  check(fresh.supportsThreads(), "the client uses server-side threads");
  const room = fresh.getRoom(roomId);
  check(room !== null, "the room is in the initial sync");
  const live = room.getLiveTimeline().getEvents().map((e) => e.getId());
  check(!live.includes(original) && !live.includes(edit) && !live.includes(root),
    "neither the original, its edit nor the thread is in the initial timeline");

  // The edit, from the original's bundled aggregation only.
  const raw = await fresh.fetchRoomEvent(roomId, original);
  const ev = fresh.getEventMapper()(raw);
  check(ev.replacingEventId() === edit, "the original's bundled m.replace names the edit");
  check(ev.replacingEvent()?.getId() === edit, "the client applied the bundled edit");
  check(ev.getContent().body === "no typo", `the original shows the edit (${ev.getContent().body})`);
  check(ev.getOriginalContent().body === "a typo", "the original content is kept");
  check(!requests.some((p) => p.includes(edit) || p.includes("/relations/")),
    "the client never fetched the edit or the original's relations");

  // The thread list and the thread's summary from the root's bundled m.thread.
  await room.createThreadsTimelineSets();
  await room.fetchRoomThreads();
  check(requests.some((p) => p.endsWith(`/rooms/${roomId}/threads`)), "the thread list came from /threads");
  const [all, mine] = room.threadsTimelineSets;
  check(all?.getLiveTimeline().getEvents().some((e) => e.getId() === root), "the root is in the all-threads list");
  check(mine?.getLiveTimeline().getEvents().some((e) => e.getId() === root), "the root is in bob's threads list");
  const thread = room.getThread(root);
  check(thread !== null, "the room knows the thread");
  await waitUntil("the thread's summary", () => thread.length === 3 && thread.replyToEvent?.getId() === lastReply,
    () => JSON.stringify({ length: thread.length, replyTo: thread.replyToEvent?.getId() }));
  const summary = thread.rootEvent.getServerAggregatedRelation("m.thread");
  check(summary?.count === 3, "the bundled thread summary counts 3 replies");
  check(summary?.latest_event?.event_id === lastReply, "the bundled summary's latest event is the last reply");
  check(summary?.current_user_participated === true, "bob participated");
  check(thread.length === 3 && thread.replyToEvent.getContent().body === "threads work",
    "the thread shows 3 replies and the latest");

  // A new reply reaches the thread through /sync. The client must be done
  // loading the thread first: a root fetched before the reply exists would
  // (rightly) count 3 and overwrite the count the reply raised.
  await waitUntil("the thread to load", () => thread.initialEventsFetched && inFlight === 0);
  const updated = new Promise((resolve) => thread.on(ThreadEvent.Update, resolve));
  const { event_id: newReply } = await alice.sendMessage(roomId, root, text("and live"));
  await updated;
  await waitUntil("the live reply", () => thread.replyToEvent?.getId() === newReply,
    () => JSON.stringify({ newReply, length: thread.length, replyTo: thread.replyToEvent?.getId() }));
  check(thread.events.some((e) => e.getId() === newReply), "a reply sent later arrives in the thread through /sync");
  // The client refetches the root when the reply arrives and takes its
  // count: the server records a relation in the transaction that stores
  // the event, so the count the client holds includes the live reply.
  await waitUntil("the client's thread count to include the live reply",
    () => thread.rootEvent.getServerAggregatedRelation("m.thread")?.count === 4 && inFlight === 0,
    () => JSON.stringify(thread.rootEvent.getServerAggregatedRelation("m.thread")));
  const root4 = fresh.getEventMapper()(await fresh.fetchRoomEvent(roomId, root));
  check(root4.getServerAggregatedRelation("m.thread")?.count === 4, "the root's bundled count includes the live reply");
} finally {
  fresh.stopClient();
}
console.log("matrix-js-sdk: all checks passed");
process.exit(0);
