"""ccxt's `kraken` class against `trader-service kraken-sim`.

ccxt is the Kraken client most third-party tools use; if it reads the
simulator's answers the way it reads Kraken's, the simulator's shapes and
error strings are right. The simulator replays a small CSV from 2022 and
moves only when stepped (`POST /sim/step`), so every fill is deterministic;
the replay is shifted to the present, so every time ccxt sees is near now.

Run through `tests/ccxt/run.sh` (it builds the binary and the venv); the
binary is taken from HEALGRID_TRADER_BIN.
"""

import os
import socket
import subprocess
import time
import urllib.request

import ccxt
import pytest

KEY = "ccxt-key"
# base64 of the bytes 0..63: any base64 secret works.
SECRET = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
SYMBOL = "DOGE/USD"
# 2022-01-01T00:00:00Z: far from now, so a time that was not shifted shows.
CSV_T0 = 1_640_995_200
# How far from the wall clock a reported time may be (the clock starts at
# launch and each step moves it one minute).
NEAR_MS = 15 * 60 * 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    binary = os.environ.get("HEALGRID_TRADER_BIN")
    assert binary and os.access(binary, os.X_OK), "set HEALGRID_TRADER_BIN to trader-service"
    csv = tmp_path_factory.mktemp("sim") / "candles.csv"
    rows = ["time,open,high,low,close,volume"]
    # The first candle opens at 0.1 and trades down to 0.099 (played on the
    # first step), then the market is flat.
    for i in range(20):
        low = "0.099" if i == 0 else "0.1"
        rows.append(f"{CSV_T0 + 60 * i},0.1,0.1,{low},0.1,100000")
    csv.write_text("\n".join(rows) + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "kraken-sim", "--listen", f"127.0.0.1:{port}",
         "--api-key", KEY, "--api-secret", SECRET, "--speed", "0",
         "--tier", "pro", "--market", f"csv:{csv}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/0/public/Time", timeout=1).read()
            break
        except OSError:
            assert proc.poll() is None, "kraken-sim exited"
            assert time.time() < deadline, "kraken-sim did not come up"
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def kraken(sim):
    ex = ccxt.kraken({
        "apiKey": KEY,
        "secret": SECRET,
        "enableRateLimit": True,
        "rateLimit": 50,
        "timeout": 10_000,
    })
    ex.urls["api"] = {"public": sim, "private": sim}
    ex.load_markets()
    return ex


def step(base):
    req = urllib.request.Request(base + "/sim/step", method="POST", data=b"")
    return urllib.request.urlopen(req, timeout=5).read()


def near_now(ms):
    return ms is not None and abs(ms - time.time() * 1000) < NEAR_MS


def test_markets_time_and_status(kraken):
    m = kraken.market(SYMBOL)
    assert m["id"] == "XDGUSD"
    assert (m["base"], m["quote"]) == ("DOGE", "USD")
    assert m["active"] and m["spot"]
    assert m["precision"]["price"] == pytest.approx(1e-7)
    assert m["precision"]["amount"] == pytest.approx(1e-8)
    assert m["limits"]["amount"]["min"] == 50
    assert m["limits"]["cost"]["min"] == 0.5
    assert (m["maker"], m["taker"]) == (pytest.approx(0.0025), pytest.approx(0.004))
    assert kraken.currencies["DOGE"]["id"] == "XXDG"
    assert near_now(kraken.fetch_time())
    assert kraken.fetch_status()["status"] == "ok"


def test_market_data(kraken):
    t = kraken.fetch_ticker(SYMBOL)
    assert t["last"] == 0.1
    assert t["bid"] < t["last"] < t["ask"]
    book = kraken.fetch_order_book(SYMBOL, 10)
    assert len(book["bids"]) == 10 and len(book["asks"]) == 10
    assert book["bids"][0][0] < book["asks"][0][0]


def test_balance(kraken):
    b = kraken.fetch_balance()
    assert b["DOGE"]["total"] == 10000
    assert b["USD"]["free"] == 1000


def test_order_lifecycle_fill_and_trades(kraken, sim):
    placed = kraken.create_order(
        SYMBOL, "limit", "buy", 100, 0.0995, {"postOnly": True, "clientOrderId": "ccxt-1"}
    )
    oid = placed["id"]
    o = kraken.fetch_order(oid)
    assert o["status"] == "open"
    assert (o["price"], o["amount"], o["side"]) == (0.0995, 100, "buy")
    assert o["postOnly"] is True
    assert o["clientOrderId"] == "ccxt-1"
    assert near_now(o["timestamp"])
    assert oid in [x["id"] for x in kraken.fetch_open_orders(SYMBOL)]
    used = kraken.fetch_balance()["USD"]["used"]
    assert used == pytest.approx(100 * 0.0995 * 1.0025)

    # The open order's client id cannot be used again (Kraken's rule).
    with pytest.raises(ccxt.ExchangeError, match="EOrder:Duplicate order"):
        kraken.create_order(
            SYMBOL, "limit", "buy", 100, 0.09, {"postOnly": True, "clientOrderId": "ccxt-1"}
        )

    other = kraken.create_order(SYMBOL, "limit", "buy", 100, 0.09, {"postOnly": True})
    kraken.cancel_order(other["id"])
    assert kraken.fetch_order(other["id"])["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        kraken.cancel_order(other["id"])

    # The first candle trades down to 0.099: the buy fills as maker.
    step(sim)
    filled = kraken.fetch_order(oid)
    assert filled["status"] == "closed" and filled["filled"] == 100
    closed = {x["id"]: x for x in kraken.fetch_closed_orders(SYMBOL)}
    assert closed[oid]["status"] == "closed"
    assert closed[other["id"]]["status"] == "canceled"
    trades = kraken.fetch_my_trades(SYMBOL)
    assert len(trades) == 1
    tr = trades[0]
    assert tr["order"] == oid
    assert (tr["side"], tr["price"], tr["amount"]) == ("buy", 0.0995, 100)
    assert tr["fee"]["cost"] == pytest.approx(100 * 0.0995 * 0.0025)
    assert tr["fee"]["currency"] == "USD"
    assert tr["takerOrMaker"] == "maker"
    assert near_now(tr["timestamp"]) and tr["timestamp"] >= o["timestamp"]
    candles = kraken.fetch_ohlcv(SYMBOL, "1m")
    assert candles and all(near_now(c[0]) for c in candles)
    public = kraken.fetch_trades(SYMBOL)
    assert public and all(near_now(x["timestamp"]) for x in public)


def test_orders_below_the_minimum_are_invalid(kraken):
    # 60 DOGE at 0.005 is 0.30 USD, under costmin 0.5.
    with pytest.raises(ccxt.InvalidOrder, match="EOrder:Order minimum not met"):
        kraken.create_order(SYMBOL, "limit", "buy", 60, 0.005, {"postOnly": True})
    # 10 DOGE is under ordermin 50.
    with pytest.raises(ccxt.InvalidOrder, match="Invalid arguments:volume"):
        kraken.create_order(SYMBOL, "limit", "buy", 10, 0.09, {"postOnly": True})
    assert not kraken.fetch_open_orders(SYMBOL)
