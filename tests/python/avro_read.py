"""Reads Confluent-framed Avro records with clients Huitong did not write, and prints them as
canonical JSON lines (one per record) for the Rust integration tests to compare.

    avro_read.py confluent --bootstrap B --registry URL --topic T --count N
        confluent-kafka's DeserializingConsumer + AvroDeserializer + SchemaRegistryClient.
    avro_read.py kcat --bootstrap B --registry URL --topic T --count N
        Debian's kcat fetches the raw bytes; fastavro decodes them with the writer schema fetched
        from the registry's REST API by the id in the Confluent header.

Canonical JSON: timestamps as epoch milliseconds, dates as ISO strings, decimals as strings,
bytes as hex; each line is {"key": ..., "schema_id": ..., "value": {...}}.
"""

import argparse
import datetime
import decimal
import io
import json
import struct
import subprocess
import sys
import urllib.request
import uuid

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def canonical(value):
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        # Integer arithmetic: float seconds would round some milliseconds away.
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def emit(key, schema_id, value):
    print(json.dumps({"key": key, "schema_id": schema_id, "value": canonical(value)},
                     ensure_ascii=False), flush=True)


def read_confluent(args):
    from confluent_kafka import Consumer, KafkaError
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": args.registry}))
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": f"avro-read-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })
    consumer.subscribe([args.topic])
    seen = 0
    idle = 0
    try:
        while seen < args.count:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
                if idle > args.timeout:
                    sys.exit(f"timed out after {seen} of {args.count} records")
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                sys.exit(f"consumer error: {msg.error()}")
            (schema_id,) = struct.unpack(">I", msg.value()[1:5])
            value = deserialize(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            key = msg.key().decode("utf-8") if msg.key() is not None else None
            emit(key, schema_id, value)
            seen += 1
    finally:
        consumer.close()


def registry_schema(registry, schema_id, cache={}):
    import fastavro
    if schema_id not in cache:
        with urllib.request.urlopen(f"{registry.rstrip('/')}/schemas/ids/{schema_id}") as response:
            body = json.load(response)
        cache[schema_id] = fastavro.parse_schema(json.loads(body["schema"]))
    return cache[schema_id]


def read_kcat(args):
    import fastavro

    # Per record: the key length as text, ':', the key, the payload length as a 32-bit
    # big-endian integer (%R), the raw payload.
    out = subprocess.run(
        ["kcat", "-C", "-b", args.bootstrap, "-t", args.topic, "-o", "beginning", "-e",
         "-c", str(args.count), "-X", "isolation.level=read_committed", "-f", "%K:%k%R%s"],
        check=True, capture_output=True, timeout=args.timeout,
    ).stdout
    stream = io.BytesIO(out)
    seen = 0
    while seen < args.count:
        length = b""
        while (c := stream.read(1)) not in (b":", b""):
            length += c
        if not length:
            sys.exit(f"kcat returned {seen} of {args.count} records")
        key_len = int(length)
        key = stream.read(key_len).decode("utf-8") if key_len >= 0 else None
        (value_len,) = struct.unpack(">i", stream.read(4))
        value = stream.read(value_len)
        if value[:1] != b"\0":
            sys.exit(f"record {seen}: no Confluent magic byte")
        (schema_id,) = struct.unpack(">I", value[1:5])
        schema = registry_schema(args.registry, schema_id)
        emit(key, schema_id, fastavro.schemaless_reader(io.BytesIO(value[5:]), schema))
        seen += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["confluent", "kcat"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=int, default=60)
    args = parser.parse_args()
    {"confluent": read_confluent, "kcat": read_kcat}[args.mode](args)


if __name__ == "__main__":
    main()
