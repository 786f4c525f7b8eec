"""The ``orm.*`` schema and operations written the Peewee way (models with ``Meta.table_name``, ``db.atomic()``,
``insert_many(...).returning``, ``on_conflict``, ``for_update``, joins, ``update().returning``, ``cte``,
``fn.SUM().over``, ``JSONField`` paths, ``playhouse.postgres_ext`` ``ArrayField`` and ``ServerSide``), over a
``peewee+<dbapi>`` session."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ..drivers.base import Session
from .ormkit import DECIMAL_DIGITS, DECIMAL_PLACES, OrmKit, unsupported


class _CountingCursor:
    """A DBAPI cursor that counts its ``execute`` calls on the kit (the statements the driver sent)."""

    def __init__(self, cursor: Any, kit: PeeweeKit):
        self._cursor, self._kit = cursor, kit

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._kit.statements += 1
        return self._cursor.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class PeeweeKit(OrmKit):
    orm = "peewee"

    def __init__(self, session: Session, prefix: str):
        super().__init__(session, prefix)
        import peewee as pw

        self.pw = pw
        self.db = db = session.peewee  # type: ignore[attr-defined]
        table = self.table
        self.postgres = postgres = session.info.kind == "postgresql"
        if postgres:
            from playhouse.postgres_ext import ArrayField

        class Base(pw.Model):
            class Meta:
                database = db
                legacy_table_names = False  # index names from the table's name (unique per cell), not the class's

        class Thing(Base):
            name = pw.CharField(max_length=40, unique=True, null=True)
            n = pw.IntegerField(null=True)
            f_json = pw.JSONField(null=True)
            f_uuid = pw.UUIDField(null=True)
            f_decimal = pw.DecimalField(max_digits=DECIMAL_DIGITS, decimal_places=DECIMAL_PLACES, null=True)
            f_datetime_aware = pw.DateTimeField(null=True)  # Peewee's one DateTimeField: no time-zone flag
            f_datetime_naive = pw.DateTimeField(null=True)
            f_bool = pw.BooleanField(null=True)
            f_bytes = pw.BlobField(null=True)
            f_bigint = pw.BigIntegerField(null=True)
            if postgres:  # playhouse.postgres_ext: PostgreSQL's arrays only
                f_array = ArrayField(pw.IntegerField, null=True)

            class Meta:
                table_name = table("things")

        class Author(Base):
            name = pw.CharField(max_length=40)

            class Meta:
                table_name = table("authors")

        class Book(Base):
            title = pw.CharField(max_length=40)
            author = pw.ForeignKeyField(Author, backref="books")

            class Meta:
                table_name = table("books")

        class Account(Base):
            balance = pw.IntegerField()

            class Meta:
                table_name = table("accounts")

        self.Thing, self.Author, self.Book, self.Account = Thing, Author, Book, Account
        self._txn: Any = None
        self._account: Any = None
        self._stream_fix: str | None = None  # the pooler fix applied (``with_fix``)

    def create_schema(self) -> None:
        self.run(lambda: self.db.create_tables([self.Thing, self.Author, self.Book, self.Account]))

    def save_field(self, field: str, value: Any) -> Any:
        if field == "enum":
            raise unsupported(self.orm, "no enum field: CharField(choices=...) neither checks nor converts the values "
                              "(a str comes back, not the enum member)")
        if field == "array" and not self.postgres:
            raise unsupported(self.orm, "ArrayField is in playhouse.postgres_ext, for PostgreSQL only")
        if field == "datetime_naive_tz":
            raise unsupported(self.orm, "DateTimeField has no time-zone setting (playhouse.postgres_ext's "
                              "DateTimeTZField is another field type, PostgreSQL only)")
        return self.run(lambda: self.Thing.create(**{self.column(field): value}).id)

    def load_field(self, pk: Any, field: str) -> Any:
        return self.run(lambda: getattr(self.Thing.get_by_id(pk), self.column(field)))

    def bulk_insert(self, names: list[str]) -> tuple[list[Any], str]:
        def insert() -> list[Any]:
            things = [self.Thing(name=name) for name in names]
            with self.db.atomic():
                self.Thing.bulk_create(things)
            return [t.id for t in things]

        return self.run(insert), "Thing.bulk_create(objects)"

    def upsert(self, name: str, n: int) -> str:
        mysql = self.session.info.kind == "mysql"  # Peewee refuses a conflict target on MySQL (ON DUPLICATE KEY)
        target = {} if mysql else {"conflict_target": [self.Thing.name]}
        call = f"Thing.insert(...).on_conflict({'' if mysql else 'conflict_target=[Thing.name], '}update=...)"
        self.run(lambda: self.Thing.insert(name=name, n=n).on_conflict(update={self.Thing.n: n}, **target).execute())
        return call

    def lock_step(self, mode: str) -> tuple[Callable[[], Any], str]:
        Thing = self.Thing
        query = {"plain": Thing.select().where(Thing.id == 1).for_update(),
                 "skip_locked": Thing.select().order_by(Thing.id).limit(1).for_update(skip_locked=True),
                 "nowait": Thing.select().where(Thing.id == 1).for_update(nowait=True)}[mode]
        call = {"plain": "for_update()", "skip_locked": "for_update(skip_locked=True)",
                "nowait": "for_update(nowait=True)"}[mode]
        try:
            query.sql()
        except ValueError as exc:  # e.g. SQLite: Peewee refuses to build FOR UPDATE
            raise unsupported(self.orm, f"{call}: {exc}") from None

        def step() -> list[Any]:
            self._open()
            return [t.id for t in query]

        return step, f"Thing.select()...{call}"

    def _open(self) -> None:
        self._txn = self.db.atomic()  # Peewee's transaction at its defaults (the server's level)
        self._txn.__enter__()

    def end(self, commit: bool) -> None:
        def finish() -> None:
            txn, self._txn = self._txn, None
            if txn is not None:  # leaving the atomic block normally commits; with an exception it rolls back
                failed = (None, None, None) if commit else (RuntimeError, RuntimeError("rolled back"), None)
                txn.__exit__(*failed)

        self.run(finish)

    def nested(self) -> tuple[list[str], str]:
        def work() -> list[str]:
            with self.db.atomic():
                self.Thing.create(name="outer")
                with self.db.atomic() as inner:
                    self.Thing.create(name="inner")
                    inner.rollback()
            return [t.name for t in self.Thing.select().order_by(self.Thing.id)]

        return self.run(work), "db.atomic() inside db.atomic(), inner.rollback()"

    def seed_books(self, n: int) -> None:
        def seed() -> None:
            with self.db.atomic():
                for i in range(n):
                    author = self.Author.create(name=f"author {i}")
                    self.Book.create(title=f"book {i}", author=author)

        self.run(seed)

    def books_with_authors(self, eager: bool) -> tuple[list[tuple[str, str]], str]:
        Book, Author = self.Book, self.Author
        if eager:
            query = Book.select(Book, Author).join(Author).order_by(Book.id)
            call = "Book.select(Book, Author).join(Author)"
        else:
            query, call = Book.select().order_by(Book.id), "Book.select(), then book.author per book"
        return self.run(lambda: [(b.title, b.author.name) for b in query]), call

    def count_statements(self) -> None:
        self.statements = 0
        cursor = type(self.db).cursor

        def counting(*args: Any, **kwargs: Any) -> Any:
            return _CountingCursor(cursor(self.db, *args, **kwargs), self)

        self.db.cursor = counting

    def read_balance(self, pk: int) -> int:
        def read() -> int:
            self._open()
            self._account = self.Account.get_by_id(pk)
            return int(self._account.balance)

        return self.run(read)

    def save_balance(self, pk: int, balance: int) -> None:
        def save() -> None:
            self._account.balance = balance
            self._account.save()

        self.run(save)
        self.end(True)

    def add_atomic(self, pk: int, amount: int) -> tuple[Callable[[], Any], str]:
        Account = self.Account

        def add() -> None:
            self._open()
            Account.update(balance=Account.balance + amount).where(Account.id == pk).execute()

        return add, "Account.update(balance=Account.balance + 100)"

    def seed_account(self, balance: int) -> int:
        return self.run(lambda: self.Account.create(balance=balance).id)

    # --- the second set of operations -------------------------------------------------------------------------
    def update_returning(self, ids: list[int], add: int) -> tuple[list[tuple[int, int]], str]:
        Thing = self.Thing
        query = Thing.update(n=Thing.n + add).where(Thing.id.in_(ids)).returning(Thing.id, Thing.n)

        def work() -> list[tuple[int, int]]:
            with self.db.atomic():  # Peewee writes RETURNING whatever the engine (it is the engine that refuses)
                return sorted((t.id, t.n) for t in query.execute())

        return self.run(work), "Thing.update(n=Thing.n + add).where(Thing.id.in_(ids)).returning(Thing.id, Thing.n)"

    def isolated_read(self, level: str, probe: Callable[[], Any]) -> tuple[Any, str]:
        if self.session.info.kind == "sqlite":
            if level != "serializable":  # SQLite's own level; read_uncommitted is a connection PRAGMA in Peewee
                raise unsupported(self.orm, f"SqliteDatabase has no isolation levels ({level!r}): atomic(lock_type) "
                                  "picks DEFERRED/IMMEDIATE/EXCLUSIVE, read_uncommitted is a pragmas= setting")
            txn, call = self.db.atomic(), "db.atomic() (SQLite: a DEFERRED transaction, serializable)"
        else:
            txn = self.db.atomic(isolation_level=level.upper())
            call = f"db.atomic(isolation_level={level.upper()!r})"

        self.run(txn.__enter__)
        try:
            return probe(), call
        finally:  # leaving the block without an exception commits (the probe only read)
            self.run(lambda: txn.__exit__(None, None, None))

    def json_filter(self, key: str, value: Any) -> tuple[list[int], str]:
        Thing = self.Thing
        query = Thing.select(Thing.id).where(Thing.f_json[key] == value).order_by(Thing.id)
        return self.run(lambda: [t.id for t in query]), f"Thing.select().where(Thing.f_json[{key!r}] == {value!r})"

    def window(self) -> tuple[list[tuple[str, int]], str]:
        Thing, fn = self.Thing, self.pw.fn
        total = fn.SUM(Thing.n).over(order_by=[Thing.id]).alias("total")
        query = Thing.select(Thing.name, total).order_by(Thing.id).tuples()
        return self.run(lambda: list(query)), "Thing.select(Thing.name, fn.SUM(Thing.n).over(order_by=[Thing.id]))"

    def cte(self, min_n: int) -> tuple[list[str], str]:
        Thing = self.Thing
        big = Thing.select(Thing.name).where(Thing.n >= min_n).cte("big")
        query = big.select_from(big.c.name).order_by(big.c.name).tuples()
        return self.run(lambda: [r[0] for r in query]), "Thing.select(...).cte('big'); big.select_from(big.c.name)"

    # ``ServerSide`` (playhouse.postgres_ext) is psycopg2's named cursor WITH HOLD in autocommit: DECLARE and each
    # FETCH are transactions of their own, which a transaction pooler may send to different server connections
    pooler_fixes = {  # noqa: RUF012
        "iterator": "query.iterator() in place of ServerSide(query): the driver buffers the rows, no cursor is left "
                    "on the server connection",
        "atomic": "ServerSide(query) inside db.atomic(): DECLARE and every FETCH in one transaction",
    }

    def with_fix(self, name: str) -> None:
        if name not in self.pooler_fixes:
            raise KeyError(name)
        self._stream_fix = name

    def pooled_work(self, rounds: int) -> str:
        Thing = self.Thing
        server_side = self.postgres and self._stream_fix != "iterator"
        if server_side:
            from playhouse.postgres_ext import ServerSide

        def stream() -> int:
            query = Thing.select().order_by(Thing.id)
            rows = ServerSide(query) if server_side else query.iterator()
            return sum(1 for _ in rows)

        def one_round(r: int) -> None:
            ids = [t.id for t in Thing.select(Thing.id).where(Thing.id > 0).order_by(Thing.id)]
            Thing.get_by_id(ids[0])
            if self._stream_fix == "atomic":
                with self.db.atomic():
                    stream()
            else:
                stream()
            with self.db.atomic():
                Thing.create(name=f"pooled {uuid.uuid4().hex[:12]}", n=r)

        for r in range(rounds):
            self.run(lambda r=r: one_round(r))
        streaming = ("ServerSide(query)" + (" in db.atomic()" if self._stream_fix == "atomic" else "")
                     if server_side else "query.iterator()")
        return (f"Thing.select().where(...), Thing.get_by_id(pk), {streaming}, "
                "Thing.create(...) in db.atomic()")
