package huitong.bench;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams peer of {@code ops/bench/hub}: the topology a Streams user would write for
 * the hub's position job. Decode the Confluent-framed Avro report (5-byte header, then Apache
 * Avro's GenericDatumReader with the raw schema), normalise its key to the entity id the hub
 * computes for a position ({@code <VIN>|<fix time, epoch ms rounded to the second>}, else the
 * plate), drop reports whose values the store already holds for the entity id (a RocksDB
 * key-value store, changelogged: later levels' copies of a point add only provenance), and write
 * the survivors keyed by entity id: one record per point. Exactly-once v2, commit every 100 ms,
 * two stream threads.
 *
 * <p>Two shapes, as the input is keyed:
 *
 * <ul>
 *   <li>{@code co-partitioned}: the input is keyed by vehicle in the partition Kafka's default
 *       partitioner gives that key, so a point's reports meet in one task already and a Streams
 *       user would not repartition: one processor decodes, keys and dedupes in the task's store
 *       ({@code process()} with a {@code KeyValueStore} keyed by entity id);
 *   <li>{@code repartition}: the input is keyed otherwise (source record ids): decode and key,
 *       repartition by entity id ({@code by-entity}), then dedupe in the store.
 * </ul>
 *
 * <p>Arguments: bootstrap, application id, input topic, output topic, state dir, raw schema
 * file, partitions of the repartition topic, reports expected (0: no end), shape ({@code
 * co-partitioned} or {@code repartition}). Prints {@code running} once the instance is RUNNING
 * and {@code done} once the store has judged the expected number of reports (their transaction
 * commits within the commit interval); stops when its standard input closes.
 */
public final class StreamsPeer {
  private static final String STORE = "seen-points";
  private static final ZoneOffset CHINA = ZoneOffset.ofHours(8);
  private static final DateTimeFormatter LOCAL = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

  /** Reports the dedup processors have judged, both threads. */
  private static final AtomicLong JUDGED = new AtomicLong();

  private static long expected;

  private StreamsPeer() {}

  private static void judged() {
    if (JUDGED.incrementAndGet() == expected) {
      System.out.println("done");
      System.out.flush();
    }
  }

  /** Decodes Confluent-framed Avro records of one writer schema. Not thread safe. */
  static final class Reports {
    private final GenericDatumReader<GenericRecord> reader;
    private BinaryDecoder decoder;
    private GenericRecord reuse;

    Reports(Schema schema) {
      reader = new GenericDatumReader<>(schema);
    }

    GenericRecord decode(byte[] framed) throws IOException {
      if (framed == null || framed.length < 5 || framed[0] != 0) {
        throw new IOException("not a Confluent-framed record");
      }
      decoder = DecoderFactory.get().binaryDecoder(framed, 5, framed.length - 5, decoder);
      reuse = reader.read(reuse, decoder);
      return reuse;
    }
  }

  private static String text(GenericRecord r, String field) {
    Object v = r.get(field);
    return v == null ? null : v.toString();
  }

  /** NFKC, whitespace, '-' and '·' removed, upper case (the hub's canonical code form). */
  static String canonical(String code) {
    String n = Normalizer.normalize(code, Normalizer.Form.NFKC);
    StringBuilder b = new StringBuilder(n.length());
    for (int i = 0; i < n.length(); i++) {
      char c = n.charAt(i);
      if (!Character.isWhitespace(c) && c != '-' && c != '·') {
        b.append(Character.toUpperCase(c));
      }
    }
    return b.toString();
  }

  /** A fix time as sent → epoch ms: RFC 3339, epoch seconds or ms, or local China time. */
  static long fixTime(String sent) {
    String t = Normalizer.normalize(sent, Normalizer.Form.NFKC).trim();
    if (t.chars().allMatch(Character::isDigit)) {
      long v = Long.parseLong(t);
      return t.length() == 13 ? v : v * 1000;
    }
    if (t.endsWith("Z")) {
      return Instant.parse(t).toEpochMilli();
    }
    if (t.indexOf('T') > 0) {
      return OffsetDateTime.parse(t).toInstant().toEpochMilli();
    }
    return LocalDateTime.parse(t, LOCAL).toInstant(CHINA).toEpochMilli();
  }

  /** The entity id of a position, as the hub's key stage forms it. */
  static String entityId(GenericRecord r) {
    String vin = text(r, "vin");
    String vehicle = vin == null || vin.isBlank() ? null : canonical(vin);
    if (vehicle == null) {
      String plate = text(r, "plate");
      vehicle = plate == null || plate.isBlank() ? null : canonical(plate);
    }
    if (vehicle == null) {
      return null;
    }
    long ms = fixTime(text(r, "fix_time"));
    long second = Math.floorDiv(ms + 500, 1000) * 1000;
    return vehicle + "|" + second;
  }

  /** What makes two reports of one point identical: its values, not its provenance. */
  static byte[] values(GenericRecord r) {
    String v =
        r.get("latitude") + "," + r.get("longitude") + "," + r.get("datum") + "," + r.get("speed_kmh")
            + "," + r.get("heading_deg") + "," + r.get("odometer_km");
    return v.getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Forwards a report, keyed by its entity id, unless the store holds identical values for that
   * id. The entity id is the record's key when {@code keyed} (after the repartition), else it is
   * computed here from the decoded report (co-partitioned input).
   */
  static final class DropIdentical<K> implements Processor<K, byte[], String, byte[]> {
    private final Reports reports;
    private final boolean keyed;
    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> seen;

    DropIdentical(Schema schema, boolean keyed) {
      reports = new Reports(schema);
      this.keyed = keyed;
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
      this.context = context;
      this.seen = context.getStateStore(STORE);
    }

    @Override
    public void process(Record<K, byte[]> record) {
      String id;
      byte[] values;
      try {
        GenericRecord report = reports.decode(record.value());
        id = keyed ? (String) record.key() : entityId(report);
        values = values(report);
      } catch (IOException | RuntimeException e) {
        judged();
        return;
      }
      if (id != null) {
        byte[] before = seen.get(id);
        if (before == null || !Arrays.equals(before, values)) {
          seen.put(id, values);
          context.forward(record.withKey(id));
        }
      }
      judged();
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 9
        || !(args[8].equals("co-partitioned") || args[8].equals("repartition"))) {
      System.err.println(
          "usage: StreamsPeer BOOTSTRAP APPLICATION_ID INPUT OUTPUT STATE_DIR SCHEMA_FILE PARTITIONS"
              + " EXPECTED co-partitioned|repartition");
      System.exit(2);
    }
    boolean copartitioned = args[8].equals("co-partitioned");
    String input = args[2];
    String output = args[3];
    Schema schema = new Schema.Parser().parse(new File(args[5]));
    int partitions = Integer.parseInt(args[6]);
    expected = Long.parseLong(args[7]);

    Properties p = new Properties();
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
    p.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 2);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);

    StreamsBuilder builder = new StreamsBuilder();
    builder.addStateStore(
        Stores.keyValueStoreBuilder(
            Stores.persistentKeyValueStore(STORE), Serdes.String(), Serdes.ByteArray()));
    KStream<byte[], byte[]> reports =
        builder.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()));
    KStream<String, byte[]> survivors;
    if (copartitioned) {
      survivors = reports.process(() -> new DropIdentical<byte[]>(schema, false), STORE);
    } else {
      ThreadLocal<Reports> decoders = ThreadLocal.withInitial(() -> new Reports(schema));
      survivors =
          reports
              .flatMap(
                  (key, value) -> {
                    try {
                      String id = entityId(decoders.get().decode(value));
                      return id == null
                          ? List.<KeyValue<String, byte[]>>of()
                          : List.of(KeyValue.pair(id, value));
                    } catch (IOException | RuntimeException e) {
                      return List.<KeyValue<String, byte[]>>of();
                    }
                  })
              .repartition(
                  Repartitioned.<String, byte[]>as("by-entity")
                      .withKeySerde(Serdes.String())
                      .withValueSerde(Serdes.ByteArray())
                      .withNumberOfPartitions(partitions))
              .process(() -> new DropIdentical<String>(schema, true), STORE);
    }
    survivors.to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));

    KafkaStreams streams = new KafkaStreams(builder.build(), p);
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setStateListener(
        (now, before) -> {
          if (now == KafkaStreams.State.RUNNING) {
            System.out.println("running");
            System.out.flush();
          }
          if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
            stopped.countDown();
          }
        });
    Runtime.getRuntime().addShutdownHook(new Thread(streams::close));
    streams.start();
    Thread stdin =
        new Thread(
            () -> {
              try {
                while (System.in.read() >= 0) {
                  // Nothing to read: the bench closes standard input to stop the peer.
                }
              } catch (IOException e) {
                // Closed.
              }
              stopped.countDown();
            });
    stdin.setDaemon(true);
    stdin.start();
    stopped.await();
    streams.close();
  }
}
