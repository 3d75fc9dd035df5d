"""A chat driven by matrix-nio (Debian's python3-matrix-nio), a client
library we did not write: register two users, create a room, invite, join,
chat both ways, then paginate the whole history back with /messages and
check that every message is there exactly once, in order. Given a second
server, bob is a user of that one: the invite, the join and every message
cross federation.

Usage: python3 nio_chat.py BASE_URL [BOB_BASE_URL]
(exits non-zero with a reason on failure)
"""
import asyncio
import sys
import uuid

from nio import (AsyncClient, JoinResponse, RegisterResponse, RoomCreateResponse,
                 RoomInviteResponse, RoomMessagesResponse, RoomSendResponse, SyncResponse)


def check(resp, kind, what):
    if not isinstance(resp, kind):
        sys.exit(f"{what} failed: {resp}")
    return resp


async def main(base, bob_base):
    run = uuid.uuid4().hex[:8]
    alice = AsyncClient(base, f"alice{run}")
    bob = AsyncClient(bob_base, f"bob{run}")
    try:
        check(await alice.register(f"alice{run}", "alice-password"), RegisterResponse, "register alice")
        check(await bob.register(f"bob{run}", "bob-password"), RegisterResponse, "register bob")

        room = check(await alice.room_create(name="nio room", topic="made by matrix-nio"),
                     RoomCreateResponse, "createRoom")
        room_id = room.room_id
        check(await alice.room_invite(room_id, bob.user_id), RoomInviteResponse, "invite")
        check(await bob.sync(timeout=0), SyncResponse, "bob's first sync")
        if room_id not in bob.invited_rooms:
            sys.exit(f"bob's sync shows no invite to {room_id}: {list(bob.invited_rooms)}")
        check(await bob.join(room_id), JoinResponse, "join")

        check(await alice.sync(timeout=0), SyncResponse, "alice's sync")
        check(await bob.sync(timeout=0), SyncResponse, "bob's sync")
        sent = []
        for i in range(25):
            sender = alice if i % 3 else bob
            body = f"message {i} from {sender.user_id}"
            check(await sender.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body}),
                  RoomSendResponse, f"send {i}")
            sent.append(body)

        # Bob's incremental syncs bring the last message of each sender
        # (over federation, possibly in several responses).
        bodies = []
        last = {m.rsplit(" ", 1)[1]: m for m in sent}.values()
        for _ in range(20):
            resp = check(await bob.sync(timeout=3000), SyncResponse, "bob's incremental sync")
            if room_id in resp.rooms.join:
                bodies += [getattr(e, "body", None) for e in resp.rooms.join[room_id].timeline.events]
            if all(m in bodies for m in last):
                break
        if not all(m in bodies for m in last):
            sys.exit(f"bob's incremental syncs lack the last messages {list(last)}; got {bodies}")

        # The whole history, backwards from now, 7 events a page.
        seen = []
        token = resp.next_batch
        for _ in range(100):
            page = check(await bob.room_messages(room_id, start=token, limit=7), RoomMessagesResponse,
                         "/messages")
            seen.extend(e.body for e in page.chunk if hasattr(e, "body"))
            if not page.chunk or not page.end:
                break
            token = page.end
        seen.reverse()
        if bob_base == base:
            if seen != sent:
                sys.exit(f"/messages history differs from what was sent:\n got {seen}\nwant {sent}")
        else:
            # Across servers, messages sent on both at once are concurrent
            # in the room's DAG: bob's server may order alice's message
            # after bob's next one. Each must be there once, and each
            # sender's messages in the order sent.
            if sorted(seen) != sorted(sent):
                sys.exit(f"/messages history has other messages than sent:\n got {seen}\nwant {sent}")
            for who in (alice.user_id, bob.user_id):
                mine = [m for m in sent if m.endswith(who)]
                if [m for m in seen if m.endswith(who)] != mine:
                    sys.exit(f"{who}'s messages are out of order in /messages: {seen}")
        print(f"ok: {len(sent)} messages in {room_id}, history paginated back exactly")
    finally:
        await alice.close()
        await bob.close()


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]))
