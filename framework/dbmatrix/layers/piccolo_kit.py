"""The ``orm.*`` schema and operations written the Piccolo way (``Table`` subclasses bound to the layer's engine,
``engine.transaction()``, ``insert(...).on_conflict``, ``objects().lock_rows``, ``objects(Book.author)``, ``update``
with ``returning``), over a ``piccolo+<dbapi>`` session.

Where Piccolo has no API (checked in its source, 1.38): no isolation level (``engine.transaction()`` takes
``allow_nested`` and, on SQLite, ``transaction_type`` DEFERRED/IMMEDIATE/EXCLUSIVE only), no window function and
no CTE in its query builder, and ``lock_rows()`` refuses SQLite (``NotImplementedError`` when the query is built).
A nested ``engine.transaction()`` is a no-op in Piccolo (it joins the outer one), so the inner block that can be
rolled back on its own is its savepoint API (``transaction.savepoint()`` ... ``rollback_to()``).
``f_json`` is ``JSONB`` on PostgreSQL: Piccolo documents ``arrow()`` filters for JSONB (its ``JSON`` is for storing
without querying; ``arrow(k) == v`` on it is 42883, ``json = unknown``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..drivers.base import Session
from .async_orm import AsyncOrmKit, reconnect
from .ormkit import DECIMAL_DIGITS, DECIMAL_PLACES, Colour, unsupported
from .piccolo_layer import PICCOLO_ADAPTERS


def _tables(table_of: Callable[[str], str], db: Any, postgres: bool) -> tuple[Any, ...]:
    from piccolo.columns import (
        JSON,
        JSONB,
        UUID,
        Array,
        BigInt,
        Boolean,
        Bytea,
        ForeignKey,
        Integer,
        Numeric,
        Timestamp,
        Timestamptz,
        Varchar,
    )
    from piccolo.table import Table

    class Thing(Table, tablename=table_of("things"), db=db):
        name = Varchar(length=40, unique=True, null=True, default=None)
        n = Integer(null=True, default=None)
        # JSONB where Piccolo has it: its docs give JSON for storing only and arrow() filters for JSONB
        f_json = (JSONB if postgres else JSON)(null=True, default=None)
        f_uuid = UUID(null=True, default=None)
        f_decimal = Numeric(digits=(DECIMAL_DIGITS, DECIMAL_PLACES), null=True, default=None)
        f_datetime_aware = Timestamptz(null=True, default=None)
        f_datetime_naive = Timestamp(null=True, default=None)
        f_bool = Boolean(null=True, default=None)
        f_bytes = Bytea(null=True, default=None)
        f_bigint = BigInt(null=True, default=None)
        f_enum = Varchar(length=10, choices=Colour, null=True, default=None)
        f_array = Array(base_column=Integer(), null=True, default=None)

    class Author(Table, tablename=table_of("authors"), db=db):
        name = Varchar(length=40)

    class Book(Table, tablename=table_of("books"), db=db):
        title = Varchar(length=40)
        author = ForeignKey(references=Author)

    class Account(Table, tablename=table_of("accounts"), db=db):
        balance = Integer()

    return Thing, Author, Book, Account


class PiccoloKit(AsyncOrmKit):
    orm = "piccolo"

    def __init__(self, session: Session, prefix: str):
        super().__init__(session, prefix)
        self.kind = session.info.kind
        self.engine = session.orm  # type: ignore[attr-defined]
        self.Thing, self.Author, self.Book, self.Account = _tables(self.table, self.engine, self.kind != "sqlite")
        self._txn: Any = None
        self._account: Any = None

    async def _inside(self, fn: Callable[[], Any]) -> Any:
        if self.kind != "sqlite":
            return await fn()
        PICCOLO_ADAPTERS.hold()  # Piccolo's sqlite3 adapters bind this operation's values only
        try:
            return await fn()
        finally:
            PICCOLO_ADAPTERS.release()

    # --- transactions left open across operations --------------------------------------------------------------
    async def _open(self) -> Any:
        self._txn = self.engine.transaction()
        return await self._txn.__aenter__()

    def end(self, commit: bool) -> None:
        async def finish() -> None:
            txn, self._txn = self._txn, None
            if txn is not None:  # leaving the block normally commits; with an exception it rolls back
                failed = (None, None, None) if commit else (RuntimeError, RuntimeError("rolled back"), None)
                await txn.__aexit__(*failed)

        self.run(finish)

    # --- the operations -----------------------------------------------------------------------------------
    def create_schema(self) -> None:
        from piccolo.table import create_db_tables

        self.run(lambda: create_db_tables(self.Thing, self.Author, self.Book, self.Account))

    def save_field(self, field: str, value: Any) -> Any:
        async def save() -> Any:
            thing = self.Thing(**{self.column(field): value})
            await thing.save()
            return thing.id

        return self.run(save)

    def load_field(self, pk: Any, field: str) -> Any:
        async def load() -> Any:
            return getattr(await self.Thing.objects().get(self.Thing.id == pk), self.column(field))

        return self.run(load)

    def bulk_insert(self, names: list[str]) -> tuple[list[Any], str]:
        async def insert() -> list[Any]:
            things = [self.Thing(name=name) for name in names]
            await self.Thing.insert(*things)
            return [t.id for t in things]

        return self.run(insert), "Thing.insert(*objects)"

    def upsert(self, name: str, n: int) -> str:
        Thing = self.Thing

        async def upsert() -> None:
            await Thing.insert(Thing(name=name, n=n)).on_conflict(target=Thing.name, action="DO UPDATE",
                                                                  values=[Thing.n])

        self.run(upsert)
        return "Thing.insert(obj).on_conflict(target=Thing.name, action='DO UPDATE', values=[Thing.n])"

    def lock_step(self, mode: str) -> tuple[Callable[[], Any], str]:
        Thing = self.Thing
        if mode == "skip_locked":
            query = Thing.select(Thing.id).order_by(Thing.id).limit(1).lock_rows(skip_locked=True)
        else:
            query = Thing.select(Thing.id).where(Thing.id == 1).lock_rows(nowait=mode == "nowait")
        call = {"plain": "lock_rows()", "skip_locked": "lock_rows(skip_locked=True)",
                "nowait": "lock_rows(nowait=True)"}[mode]
        try:
            query.querystrings  # noqa: B018  (building the query is where Piccolo refuses SQLite)
        except NotImplementedError as exc:
            raise unsupported(self.orm, f"{call}: {exc}") from None

        async def step() -> list[Any]:
            await self._open()
            return [row["id"] for row in await query]

        return step, f"Thing.select(...).{call} in engine.transaction()"

    def nested(self) -> tuple[list[str], str]:
        async def work() -> list[str]:
            async with self.engine.transaction() as txn:
                await self.Thing(name="outer").save()
                savepoint = await txn.savepoint()
                await self.Thing(name="inner").save()
                await savepoint.rollback_to()
            return [r["name"] for r in await self.Thing.select(self.Thing.name).order_by(self.Thing.id)]

        return self.run(work), ("transaction.savepoint() inside engine.transaction(), savepoint.rollback_to() "
                                "(a nested engine.transaction() only joins the outer one)")

    def seed_books(self, n: int) -> None:
        async def seed() -> None:
            async with self.engine.transaction():
                for i in range(n):
                    author = self.Author(name=f"author {i}")
                    await author.save()
                    await self.Book(title=f"book {i}", author=author).save()

        self.run(seed)

    def books_with_authors(self, eager: bool) -> tuple[list[tuple[str, str]], str]:
        Book = self.Book

        async def read() -> list[tuple[str, str]]:
            if eager:
                return [(b.title, b.author.name) for b in await Book.objects(Book.author).order_by(Book.id)]
            books = await Book.objects().order_by(Book.id)
            return [(b.title, (await b.get_related(Book.author)).name) for b in books]

        call = ("Book.objects(Book.author) (the related row joined in)" if eager
                else "Book.objects(), then book.get_related(Book.author) per book (a foreign key is its id)")
        return self.run(read), call

    def seed_account(self, balance: int) -> int:
        async def seed() -> int:
            account = self.Account(balance=balance)
            await account.save()
            return account.id

        return self.run(seed)

    def read_balance(self, pk: int) -> int:
        async def read() -> int:
            await self._open()
            self._account = await self.Account.objects().get(self.Account.id == pk)
            return int(self._account.balance)

        return self.run(read)

    def save_balance(self, pk: int, balance: int) -> None:
        async def save() -> None:
            self._account.balance = balance
            await self._account.save()

        self.run(save)
        self.end(True)

    def add_atomic(self, pk: int, amount: int) -> tuple[Callable[[], Any], str]:
        Account = self.Account

        async def add() -> None:
            await self._open()
            await Account.update({Account.balance: Account.balance + amount}).where(Account.id == pk)

        return add, "Account.update({Account.balance: Account.balance + 100})"

    # --- the second set ----------------------------------------------------------------------------------------
    def update_returning(self, ids: list[int], add: int) -> tuple[list[tuple[int, int]], str]:
        Thing = self.Thing

        async def update() -> list[tuple[int, int]]:
            rows = await Thing.update({Thing.n: Thing.n + add}).where(Thing.id.is_in(ids)).returning(Thing.id,
                                                                                                     Thing.n)
            return sorted((r["id"], r["n"]) for r in rows)

        return self.run(update), "Thing.update({Thing.n: Thing.n + add}).where(...).returning(Thing.id, Thing.n)"

    def isolated_read(self, level: str, probe: Any) -> tuple[Any, str]:
        raise unsupported(self.orm, "no way to ask for an isolation level: engine.transaction() takes allow_nested "
                          "(and on SQLite transaction_type DEFERRED/IMMEDIATE/EXCLUSIVE) only")

    def json_filter(self, key: str, value: Any) -> tuple[list[int], str]:
        from piccolo.utils.encoding import dump_json

        Thing = self.Thing
        # Piccolo dumps a non-str value to JSON but takes a str as JSON text already: a string is compared as its
        # JSON encoding ('"red"'); the bare 'red' is invalid JSON on JSONB (22P02) and matches nothing on SQLite
        wanted = dump_json(value) if isinstance(value, str) else value
        column = "JSONB" if self.kind != "sqlite" else "JSON"
        call = f"Thing.select(Thing.id).where(Thing.f_json.arrow({key!r}).eq({wanted!r})) ({column} column)"

        async def find() -> list[int]:
            return sorted(r["id"] for r in await Thing.select(Thing.id).where(Thing.f_json.arrow(key).eq(wanted)))

        return self.run(find), call

    def window(self) -> tuple[list[tuple[str, int]], str]:
        raise unsupported(self.orm, "no window function API in its query builder (no OVER clause)")

    def cte(self, min_n: int) -> tuple[list[str], str]:
        raise unsupported(self.orm, "no common table expression (WITH) API in its query builder")

    @property
    def pooler_fixes(self) -> dict[str, str]:  # type: ignore[override]
        if self.kind == "sqlite":
            return {}
        return {"statement_cache_size=0": "PostgresEngine(config={..., 'statement_cache_size': 0}): Piccolo passes "
                "its config to asyncpg.connect / create_pool, and asyncpg then prepares no named statement it reuses "
                "(except for a cursor: batch() still prepares one)"}

    def with_fix(self, name: str) -> None:
        if name not in self.pooler_fixes:
            raise unsupported(self.orm, f"no pooler fix {name!r} on {self.kind}")
        reconnect(self.session, {"statement_cache_size": 0})
        self.engine = self.session.orm = self.session._do(  # type: ignore[attr-defined]
            lambda: self.session.adapter.attach(self.session))  # type: ignore[attr-defined]
        self.Thing, self.Author, self.Book, self.Account = _tables(self.table, self.engine, self.kind != "sqlite")

    def pooled_work(self, rounds: int) -> str:
        Thing = self.Thing

        async def work() -> None:
            for i in range(rounds):
                thing = Thing(name=f"pooled {id(self)} {i}", n=i)
                await thing.save()
                await Thing.objects().get(Thing.id == thing.id)
                await Thing.select().where(Thing.n >= 0).limit(5)
                async with await Thing.select().batch(batch_size=2) as batch:  # with a WHERE it fails on SQLite
                    async for _ in batch:
                        pass
                async with self.engine.transaction():
                    thing.n = i + 1
                    await thing.save()

        self.run(work)
        return ("Thing(...).save(), Thing.objects().get(...), Thing.select().where(...), "
                "async with Thing.select().batch(batch_size=2) (an asyncpg cursor on PostgreSQL: a named prepared "
                "statement whatever statement_cache_size), obj.save() in engine.transaction()")
