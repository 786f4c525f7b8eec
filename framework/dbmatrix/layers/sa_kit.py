"""The ``orm.*`` schema and operations written the SQLAlchemy ORM way (``sa-orm+<dbapi>``: declarative models) and
the SQLModel way (``sqlmodel+<dbapi>``: ``SQLModel`` classes with ``Field``/``Relationship``); both run through the
ORM ``Session`` of the layer's session (``Session.add``/``flush``/``get``, ``begin_nested``, ``with_for_update``,
loader options, the dialects' ``insert().on_conflict_do_update`` / ``on_duplicate_key_update``, ``update().returning``,
the ``isolation_level`` execution option, JSON ``["key"].as_string()``, ``func.sum().over``, ``.cte()``, ``yield_per``).

No ``from __future__ import annotations`` here: both declarative styles read the model annotations at run time.
"""

import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    Numeric,
    String,
    event,
    func,
    select,
    update,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.exc import CompileError
from sqlalchemy.orm import DeclarativeBase, Mapped, joinedload, mapped_column, registry, relationship

from ..drivers.base import Session
from ..drivers.protocol import PG_KINDS
from .ormkit import DECIMAL_DIGITS, DECIMAL_PLACES, Colour, OrmKit, unsupported

AUTOCOMMIT = "AUTOCOMMIT"


def _colour(table: Callable[[str], str]) -> SAEnum:
    """The enum column's type: PostgreSQL creates a named type, so it is named after the cell's tables."""
    return SAEnum(Colour, name=table("colour"))


def _declarative(table: Callable[[str], str], arrays: bool) -> tuple[Any, ...]:
    """SQLAlchemy 2.0 declarative models on a metadata of their own (``arrays``: the engine has ARRAY)."""

    class Base(DeclarativeBase):
        pass

    class Thing(Base):
        __tablename__ = table("things")
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str | None] = mapped_column(String(40), unique=True)
        n: Mapped[int | None]
        f_json: Mapped[Any | None] = mapped_column(JSON)
        f_uuid: Mapped[uuid.UUID | None]
        f_decimal: Mapped[decimal.Decimal | None] = mapped_column(Numeric(DECIMAL_DIGITS, DECIMAL_PLACES))
        f_datetime_aware: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
        f_datetime_naive: Mapped[dt.datetime | None]
        f_bool: Mapped[bool | None]
        f_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)
        f_bigint: Mapped[int | None] = mapped_column(BigInteger)
        f_enum: Mapped[Colour | None] = mapped_column(_colour(table))
        if arrays:
            f_array: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))

    class Author(Base):
        __tablename__ = table("authors")
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(40))

    class Book(Base):
        __tablename__ = table("books")
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(40))
        author_id: Mapped[int] = mapped_column(ForeignKey(f"{table('authors')}.id"))
        author: Mapped[Author] = relationship()

    class Account(Base):
        __tablename__ = table("accounts")
        id: Mapped[int] = mapped_column(primary_key=True)
        balance: Mapped[int]

    return Base.metadata, Thing, Author, Book, Account


def _sqlmodel(table: Callable[[str], str], arrays: bool) -> tuple[Any, ...]:
    """SQLModel table models on a registry of their own (SQLModel's default one is process-wide)."""
    from pydantic import NaiveDatetime
    from sqlmodel import Field, Relationship, SQLModel

    class Base(SQLModel, registry=registry()):
        pass

    class Thing(Base, table=True):
        __tablename__ = table("things")
        id: int | None = Field(default=None, primary_key=True)
        name: str | None = Field(default=None, max_length=40, unique=True)
        n: int | None = None
        f_json: dict | None = Field(default=None, sa_type=JSON)
        f_uuid: uuid.UUID | None = None
        f_decimal: decimal.Decimal | None = Field(default=None, max_digits=DECIMAL_DIGITS,
                                                  decimal_places=DECIMAL_PLACES)
        # SQLModel's own time-zone setting is the annotation: datetime is its UTCDateTime (aware, stored as UTC,
        # naive values refused), pydantic's NaiveDatetime a DateTime(timezone=False)
        f_datetime_aware: dt.datetime | None = None
        f_datetime_naive: NaiveDatetime | None = None
        f_bool: bool | None = None
        f_bytes: bytes | None = None
        f_bigint: int | None = Field(default=None, sa_type=BigInteger)
        f_enum: Colour | None = Field(default=None, sa_type=_colour(table))
        if arrays:
            f_array: list[int] | None = Field(default=None, sa_type=ARRAY(Integer))

    class Author(Base, table=True):
        __tablename__ = table("authors")
        id: int | None = Field(default=None, primary_key=True)
        name: str = Field(max_length=40)

    class Book(Base, table=True):
        __tablename__ = table("books")
        id: int | None = Field(default=None, primary_key=True)
        title: str = Field(max_length=40)
        author_id: int = Field(foreign_key=f"{table('authors')}.id")
        author: Author = Relationship()

    class Account(Base, table=True):
        __tablename__ = table("accounts")
        id: int | None = Field(default=None, primary_key=True)
        balance: int

    return Base.metadata, Thing, Author, Book, Account


class SAKit(OrmKit):
    orm = "sqlalchemy"

    def __init__(self, session: Session, prefix: str):
        super().__init__(session, prefix)
        self.metadata, self.Thing, self.Author, self.Book, self.Account = self._models()
        self._account: Any = None

    def _models(self) -> tuple[Any, ...]:
        return _declarative(self.table, self.arrays)

    @property
    def arrays(self) -> bool:
        return self.session.info.kind in PG_KINDS  # SQLAlchemy's ARRAY type: PostgreSQL's dialects only

    @property
    def orm_session(self) -> Any:
        return self.session.orm  # type: ignore[attr-defined]

    def _op(self, fn: Callable[[], Any]) -> Any:
        return self.session._sa(fn)  # type: ignore[attr-defined]

    # --- SQLAlchemy's transaction at its defaults, as SQLAlchemyOps.begin opens one -------------------------------
    def _open(self) -> None:
        s = self.session
        s._begin(s.adapter.transaction_options(s.info.kind, None, s.engine.dialect, s.info.engine))  # type: ignore

    def _finish(self, commit: bool) -> None:
        try:
            (self.orm_session.commit if commit else self.orm_session.rollback)()
        finally:
            self.session.conn.execution_options(isolation_level=AUTOCOMMIT)  # type: ignore[attr-defined]

    def _in_transaction(self, fn: Callable[[], Any]) -> Any:
        self._open()
        try:
            out = fn()
        except BaseException:
            self._finish(False)
            raise
        self._finish(True)
        return out

    def end(self, commit: bool) -> None:
        self.run(lambda: self._finish(commit))

    # --- the operations -----------------------------------------------------------------------------------
    def create_schema(self) -> None:
        def create() -> None:  # through the ORM session's connection, which the session protocol shares
            self.metadata.create_all(self.orm_session.connection())
            self.orm_session.commit()

        self.run(create)

    def save_field(self, field: str, value: Any) -> Any:
        if field == "array" and not self.arrays:
            raise unsupported(self.orm, f"ARRAY is PostgreSQL's only: the {self.session.engine.dialect.name} "  # type: ignore[attr-defined]
                              "dialect has no array type")

        def save() -> Any:
            thing = self.Thing(**{self.column(field): value})
            self.orm_session.add(thing)
            self.orm_session.flush()
            return thing.id

        return self.run(lambda: self._in_transaction(save))

    def load_field(self, pk: Any, field: str) -> Any:
        def load() -> Any:
            self.orm_session.expunge_all()  # a fresh object, not the one the identity map kept
            return getattr(self.orm_session.get(self.Thing, pk), self.column(field))

        return self.run(load)

    def bulk_insert(self, names: list[str]) -> tuple[list[Any], str]:
        def insert() -> list[Any]:
            things = [self.Thing(name=name) for name in names]
            self.orm_session.add_all(things)
            self.orm_session.flush()
            return [t.id for t in things]

        return self.run(lambda: self._in_transaction(insert)), "session.add_all(objects); session.flush()"

    def upsert(self, name: str, n: int) -> str:
        kind = self.session.info.kind
        if kind == "mysql":
            from sqlalchemy.dialects.mysql import insert

            stmt = insert(self.Thing).values(name=name, n=n).on_duplicate_key_update(n=n)
            call = "sqlalchemy.dialects.mysql.insert(Thing).on_duplicate_key_update(n=...)"
        else:
            module = "postgresql" if kind in ("postgresql", "cockroachdb") else "sqlite"
            dialect = __import__(f"sqlalchemy.dialects.{module}", fromlist=["insert"])
            stmt = dialect.insert(self.Thing).values(name=name, n=n).on_conflict_do_update(
                index_elements=[self.Thing.name], set_={"n": n})
            call = f"sqlalchemy.dialects.{module}.insert(Thing).on_conflict_do_update(index_elements=[Thing.name])"
        self.run(lambda: self._in_transaction(lambda: self.orm_session.execute(stmt)))
        return f"session.execute({call})"

    def lock_step(self, mode: str) -> tuple[Callable[[], Any], str]:
        Thing = self.Thing
        query, call = {
            "plain": (select(Thing).where(Thing.id == 1).with_for_update(), "with_for_update()"),
            "skip_locked": (select(Thing).order_by(Thing.id).limit(1).with_for_update(skip_locked=True),
                            "with_for_update(skip_locked=True)"),
            "nowait": (select(Thing).where(Thing.id == 1).with_for_update(nowait=True),
                       "with_for_update(nowait=True)")}[mode]

        def step() -> list[Any]:
            self.orm_session.expunge_all()
            self._open()
            return [t.id for t in self.orm_session.scalars(query)]

        return step, f"select(Thing)...{call}"

    def nested(self) -> tuple[list[str], str]:
        def work() -> list[str]:
            self.orm_session.add(self.Thing(name="outer"))
            self.orm_session.flush()
            savepoint = self.orm_session.begin_nested()
            self.orm_session.add(self.Thing(name="inner"))
            self.orm_session.flush()
            savepoint.rollback()
            return []

        def read() -> list[str]:
            self.orm_session.expunge_all()
            return list(self.orm_session.scalars(select(self.Thing.name).order_by(self.Thing.id)))

        self.run(lambda: self._in_transaction(work))
        return self.run(read), "session.begin_nested() inside session.begin(), savepoint.rollback()"

    def seed_books(self, n: int) -> None:
        def seed() -> None:
            for i in range(n):
                self.orm_session.add(self.Book(title=f"book {i}", author=self.Author(name=f"author {i}")))

        self.run(lambda: self._in_transaction(seed))

    def books_with_authors(self, eager: bool) -> tuple[list[tuple[str, str]], str]:
        Book = self.Book
        query = select(Book).order_by(Book.id)
        if eager:
            query, call = query.options(joinedload(Book.author)), "select(Book).options(joinedload(Book.author))"
        else:
            call = "select(Book), then book.author per book (lazy='select', the default)"

        def read() -> list[tuple[str, str]]:
            self.orm_session.expunge_all()  # a fresh unit of work: no author already in the identity map
            return [(b.title, b.author.name) for b in self.orm_session.scalars(query)]

        return self.run(read), call

    def count_statements(self) -> None:
        self.statements = 0

        def counted(*_args: Any) -> None:
            self.statements += 1

        # the engine's hook right before each DBAPI cursor.execute / executemany
        event.listen(self.session.engine, "before_cursor_execute", counted)  # type: ignore[attr-defined]

    def seed_account(self, balance: int) -> int:
        def seed() -> int:
            account = self.Account(balance=balance)
            self.orm_session.add(account)
            self.orm_session.flush()
            return account.id

        return self.run(lambda: self._in_transaction(seed))

    def read_balance(self, pk: int) -> int:
        def read() -> int:
            self.orm_session.expunge_all()
            self._open()
            self._account = self.orm_session.get(self.Account, pk)
            return int(self._account.balance)

        return self.run(read)

    def save_balance(self, pk: int, balance: int) -> None:
        def save() -> None:
            self._account.balance = balance
            self._finish(True)  # the ORM flushes the change, then commits

        self.run(save)

    def add_atomic(self, pk: int, amount: int) -> tuple[Callable[[], Any], str]:
        Account = self.Account

        def add() -> None:
            self._open()
            self.orm_session.execute(update(Account).where(Account.id == pk).values(balance=Account.balance + amount))

        return add, "session.execute(update(Account).values(balance=Account.balance + 100))"

    # --- the second set of operations -------------------------------------------------------------------------
    def update_returning(self, ids: list[int], add: int) -> tuple[list[tuple[int, int]], str]:
        Thing = self.Thing
        stmt = update(Thing).where(Thing.id.in_(ids)).values(n=Thing.n + add).returning(Thing.id, Thing.n)
        call = "session.execute(update(Thing).where(Thing.id.in_(ids)).values(n=Thing.n + add).returning(...))"

        def work() -> list[tuple[int, int]]:
            try:
                rows = self.orm_session.execute(stmt).all()
            except CompileError as exc:  # SQLAlchemy's own refusal: the dialect has no UPDATE ... RETURNING
                raise unsupported(self.orm, f"{call}: {exc}") from None
            return sorted((r[0], r[1]) for r in rows)

        return self.run(lambda: self._in_transaction(work)), call

    def isolated_read(self, level: str, probe: Callable[[], Any]) -> tuple[Any, str]:
        s = self.session
        # SQLAlchemy's documented way for an ORM session: the connection's isolation_level execution option (on
        # SQLite with the begin-event recipe that emits SQLite's BEGIN), as SQLAlchemyOps.begin_native asks
        opts = s.adapter.transaction_options(s.info.kind, level, s.engine.dialect, s.info.engine)  # type: ignore
        call = f"session.connection(execution_options={{'isolation_level': {opts['isolation_level']!r}}})"

        def open_at_level() -> None:
            self.orm_session.expunge_all()
            s._begin(opts)  # type: ignore[attr-defined]

        self.run(open_at_level)
        try:
            return probe(), call
        finally:
            self.end(False)

    def json_filter(self, key: str, value: Any) -> tuple[list[int], str]:
        Thing = self.Thing
        how = "as_integer" if isinstance(value, int) else "as_string"
        query = select(Thing.id).where(getattr(Thing.f_json[key], how)() == value).order_by(Thing.id)
        return (self.run(lambda: list(self.orm_session.scalars(query))),
                f"select(Thing.id).where(Thing.f_json[{key!r}].{how}() == {value!r})")

    def window(self) -> tuple[list[tuple[str, int]], str]:
        Thing = self.Thing
        query = select(Thing.name, func.sum(Thing.n).over(order_by=Thing.id)).order_by(Thing.id)
        return (self.run(lambda: [(r[0], r[1]) for r in self.orm_session.execute(query)]),
                "select(Thing.name, func.sum(Thing.n).over(order_by=Thing.id))")

    def cte(self, min_n: int) -> tuple[list[str], str]:
        Thing = self.Thing
        big = select(Thing.name).where(Thing.n >= min_n).cte("big")
        query = select(big.c.name).order_by(big.c.name)
        return (self.run(lambda: list(self.orm_session.scalars(query))),
                "big = select(Thing.name).where(...).cte('big'); select(big.c.name)")

    # SQLAlchemy's ORM at its defaults keeps nothing on a server connection between transactions over a DBAPI that
    # prepares no named statements (psycopg2, mysqlclient); a driver's own setting is the driver's pooling case
    pooler_fixes: dict[str, str] = {}  # noqa: RUF012

    def with_fix(self, name: str) -> None:
        raise KeyError(name)

    def pooled_work(self, rounds: int) -> str:
        Thing, orm = self.Thing, self.orm_session

        def one_round(r: int) -> None:
            orm.expunge_all()
            ids = list(orm.scalars(select(Thing.id).where(Thing.id > 0).order_by(Thing.id)))
            orm.get(Thing, ids[0])
            # the ORM's streaming way: yield_per (a server-side cursor on PostgreSQL), inside its transaction
            sum(1 for _ in orm.scalars(select(Thing).order_by(Thing.id).execution_options(yield_per=10)))
            orm.add(Thing(name=f"pooled {uuid.uuid4().hex[:12]}", n=r))

        for r in range(rounds):
            self.run(lambda r=r: self._in_transaction(lambda: one_round(r)))
        return ("in session.begin(): select(Thing).where(...), session.get(Thing, pk), "
                "select(Thing).execution_options(yield_per=10), session.add(Thing(...))")


class SQLModelKit(SAKit):
    orm = "sqlmodel"

    def _models(self) -> tuple[Any, ...]:
        return _sqlmodel(self.table, self.arrays)
