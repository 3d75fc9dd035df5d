"""An end-to-end encrypted chat driven by matrix-nio with python3-olm
(Debian's packages), a client and a crypto library we did not write: two
users register, upload their device and one-time keys, alice creates an
encrypted room and invites bob; each sends megolm-encrypted messages, which
takes /keys/query, /keys/claim and olm-encrypted to-device messages carrying
the room keys; each decrypts the other's messages from /sync.

With a second base URL, bob is a user of that server: keys are queried and
claimed, and the room keys sent to-device, over federation, and each
server learns the other's user's device list from device list updates.

Usage: python3 nio_e2ee.py BASE_URL [BOB_BASE_URL]
(exits non-zero with a reason on failure)
"""
import asyncio
import sys
import tempfile
import uuid

from nio import (AsyncClient, AsyncClientConfig, JoinResponse, KeysQueryResponse,
                 KeysUploadResponse, MegolmEvent, RegisterResponse, RoomCreateResponse, RoomInviteResponse,
                 RoomMessageText, RoomSendResponse, SyncResponse)


def check(resp, kind, what):
    if not isinstance(resp, kind):
        sys.exit(f"{what} failed: {resp}")
    return resp


async def settle(client, who):
    """One sync, then whatever key upkeep nio asks for: uploads when its
    one-time keys run low, queries for users whose device lists changed."""
    resp = check(await client.sync(timeout=0), SyncResponse, f"{who}'s sync")
    if client.should_upload_keys:
        check(await client.keys_upload(), KeysUploadResponse, f"{who}'s key upload")
    if client.should_query_keys:
        check(await client.keys_query(), KeysQueryResponse, f"{who}'s key query")
    return resp


def decrypted_bodies(client, resp, room_id):
    """The bodies of the other user's messages in the room's timeline of a
    sync response, each of which must have arrived encrypted and been
    decrypted."""
    room = resp.rooms.join.get(room_id)
    if room is None:
        return []
    bodies = []
    for ev in room.timeline.events:
        if ev.sender == client.user_id:
            continue
        if isinstance(ev, MegolmEvent):
            # Not decrypted during the sync: try once more now that every
            # to-device message of the sync was handled.
            ev = client.decrypt_event(ev)
            if isinstance(ev, MegolmEvent):
                sys.exit(f"{client.user_id} could not decrypt {ev.event_id} (session {ev.session_id})")
        if isinstance(ev, RoomMessageText):
            if not getattr(ev, "decrypted", False):
                sys.exit(f"{client.user_id} got a message in clear in an encrypted room: {ev.body!r}")
            bodies.append(ev.body)
    return bodies


async def until(client, who, what, cond):
    """Syncs until cond() holds (federation takes a moment), for at most
    about 20 s."""
    for _ in range(100):
        await settle(client, who)
        if cond():
            return
        await asyncio.sleep(0.2)
    sys.exit(f"{who}: {what} did not happen")


async def receive(client, who, room_id, want):
    """Syncs until every body of want arrived, decrypted, in order."""
    got = []
    for _ in range(100):
        resp = await settle(client, who)
        got.extend(decrypted_bodies(client, resp, room_id))
        if len(got) >= len(want):
            break
        await asyncio.sleep(0.2)
    if got != want:
        sys.exit(f"{who} decrypted {got}, want {want}")


async def main(base, bob_base):
    run = uuid.uuid4().hex[:8]
    dirs = [tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()]
    config = AsyncClientConfig(encryption_enabled=True)
    alice = AsyncClient(base, f"alice{run}", store_path=dirs[0].name, config=config)
    bob = AsyncClient(bob_base, f"bob{run}", store_path=dirs[1].name, config=config)
    try:
        check(await alice.register(f"alice{run}", "alice-password", "alice's laptop"), RegisterResponse, "register alice")
        check(await bob.register(f"bob{run}", "bob-password", "bob's phone"), RegisterResponse, "register bob")
        for client, who in ((alice, "alice"), (bob, "bob")):
            up = check(await client.keys_upload(), KeysUploadResponse, f"{who}'s first key upload")
            if up.signed_curve25519_count <= 0:
                sys.exit(f"{who}'s upload left no one-time keys on the server: {up}")

        room = check(await alice.room_create(
            name="secret room",
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]),
            RoomCreateResponse, "createRoom")
        room_id = room.room_id
        # A separate /invite: createRoom's invite list does not yet reach
        # a user of another server.
        check(await alice.room_invite(room_id, bob.user_id), RoomInviteResponse, "invite")
        await until(bob, "bob", f"the invite to {room_id}", lambda: room_id in bob.invited_rooms)
        check(await bob.join(room_id), JoinResponse, "join")
        await until(bob, "bob", "the join", lambda: room_id in bob.rooms and alice.user_id in bob.rooms[room_id].users)
        await until(alice, "alice", "bob's join", lambda: bob.user_id in alice.rooms[room_id].users)
        if not alice.rooms[room_id].encrypted:
            sys.exit("alice's client does not see the room as encrypted")

        # alice → bob: the first send claims one of bob's one-time keys,
        # opens an olm session and sends him the megolm key to-device.
        sent = []
        for i in range(3):
            body = f"secret {i} from alice"
            check(await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                        ignore_unverified_devices=True), RoomSendResponse, f"alice's send {i}")
            sent.append(body)
        await receive(bob, "bob", room_id, sent)

        # bob → alice, with his own megolm session.
        await settle(bob, "bob")
        replies = []
        for i in range(3):
            body = f"secret reply {i} from bob"
            check(await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                      ignore_unverified_devices=True), RoomSendResponse, f"bob's send {i}")
            replies.append(body)
        await receive(alice, "alice", room_id, replies)
        print(f"ok: {len(sent)} messages alice→bob and {len(replies)} bob→alice, "
              f"megolm-encrypted in {room_id}, each decrypted by the other")
    finally:
        await alice.close()
        await bob.close()
        for d in dirs:
            d.cleanup()


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]))
