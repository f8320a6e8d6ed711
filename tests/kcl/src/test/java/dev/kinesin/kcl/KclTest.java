package dev.kinesin.kcl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayInputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.cloudwatch.CloudWatchAsyncClient;
import software.amazon.awssdk.services.dynamodb.DynamoDbAsyncClient;
import software.amazon.awssdk.services.dynamodb.model.AttributeValue;
import software.amazon.awssdk.services.dynamodb.model.BillingMode;
import software.amazon.awssdk.services.dynamodb.model.KeyType;
import software.amazon.awssdk.services.dynamodb.model.ProjectionType;
import software.amazon.awssdk.services.dynamodb.model.ScalarAttributeType;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.services.kinesis.model.PutRecordsRequestEntry;
import software.amazon.awssdk.services.kinesis.model.PutRecordsResultEntry;
import software.amazon.awssdk.services.kinesis.model.StreamStatus;
import software.amazon.kinesis.common.ConfigsBuilder;
import software.amazon.kinesis.common.InitialPositionInStream;
import software.amazon.kinesis.common.InitialPositionInStreamExtended;
import software.amazon.kinesis.common.KinesisClientUtil;
import software.amazon.kinesis.coordinator.Scheduler;
import software.amazon.kinesis.lifecycle.events.InitializationInput;
import software.amazon.kinesis.lifecycle.events.LeaseLostInput;
import software.amazon.kinesis.lifecycle.events.ProcessRecordsInput;
import software.amazon.kinesis.lifecycle.events.ShardEndedInput;
import software.amazon.kinesis.lifecycle.events.ShutdownRequestedInput;
import software.amazon.kinesis.metrics.NullMetricsFactory;
import software.amazon.kinesis.processor.ShardRecordProcessor;
import software.amazon.kinesis.retrieval.KinesisClientRecord;
import software.amazon.kinesis.retrieval.polling.PollingConfig;

/**
 * An unmodified KCL 3.x application (the Scheduler built from ConfigsBuilder) against the kinesin
 * binary, leases in dynalite. The Kinesis client is KCL's own
 * (`KinesisClientUtil.createKinesisAsyncClient`: Netty, HTTP/2, CBOR); only endpoint, region and
 * credentials are set on the clients, and the JVM's trust store holds kinesin's generated
 * certificate. Metrics go to
 * `NullMetricsFactory`, so nothing is sent to CloudWatch. Each run writes RECORDS records with
 * distinct partition keys to a SHARDS-shard stream and lets KCL process them from TRIM_HORIZON,
 * checkpointing after every batch; then splits shard 0 under the running application and writes
 * RECORDS_AFTER_SPLIT more. It passes when every record was processed exactly once, with the
 * sequence number PutRecords gave it, and the lease table holds each shard's last sequence number
 * as its checkpoint — SHARD_END for the split parent, whose processor saw its end.
 * Run 1 reads through enhanced fan-out (KCL's default: RegisterStreamConsumer, SubscribeToShard
 * from TRIM_HORIZON on every shard, then the children) over TLS, run 2 through polling
 * (`PollingConfig`: GetShardIterator, GetRecords) over cleartext HTTP/2; both at once. ListShards with ShardFilter, DescribeStreamSummary and
 * DescribeStreamConsumer come with both.
 */
class KclTest {
    private static final int SHARDS = 4;
    private static final int RECORDS = 2000;
    private static final int RECORDS_AFTER_SPLIT = 400;
    private static final Duration RUN_TIMEOUT = Duration.ofSeconds(120);
    private static final StaticCredentialsProvider CREDENTIALS =
            StaticCredentialsProvider.create(AwsBasicCredentials.create("test", "test"));
    private static Processes kinesin;
    private static URI kinesinTls;
    private static Processes dynalite;

    @BeforeAll
    static void start() throws Exception {
        int tlsPort = Processes.freePort();
        kinesin = Processes.kinesin(tlsPort);
        kinesinTls = URI.create("https://127.0.0.1:" + tlsPort);
        dynalite = Processes.dynalite();
        // KCL builds its own Netty client, so trust for kinesin's generated certificate comes
        // through the JVM's default trust store, which that client uses when given none.
        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(Files.readAllBytes(kinesin.generatedCertificate())));
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        store.setCertificateEntry("kinesin", cert);
        Path trustStore = Files.createTempFile("kinesin-trust-", ".p12");
        try (OutputStream out = Files.newOutputStream(trustStore)) {
            store.store(out, "kinesin".toCharArray());
        }
        System.setProperty("javax.net.ssl.trustStore", trustStore.toString());
        System.setProperty("javax.net.ssl.trustStorePassword", "kinesin");
        System.setProperty("javax.net.ssl.trustStoreType", "PKCS12");
    }

    @AfterAll
    static void stop() throws Exception {
        if (kinesin != null) {
            kinesin.close();
        }
        if (dynalite != null) {
            dynalite.close();
        }
    }

    /** Over TLS (KCL's client assumes HTTP/2 there too: no ALPN). */
    @Test
    void enhancedFanOut() throws Exception {
        run("kcl-efo", false, kinesinTls);
    }

    /** Over cleartext HTTP/2 (prior knowledge). */
    @Test
    void polling() throws Exception {
        run("kcl-polling", true, kinesin.endpoint);
    }

    /** What the record processors saw, shared by all of them. */
    private static final class Seen {
        /**
         * partition key → sequence numbers it was delivered with (more than one: a duplicate). A
         * key belongs to one shard, but a shard may move between processor threads.
         */
        final Map<String, List<String>> byKey = new ConcurrentHashMap<>();
        final AtomicInteger batches = new AtomicInteger();
        final Map<String, String> shardEnded = new ConcurrentHashMap<>();
    }

    private static final class Processor implements ShardRecordProcessor {
        private final Seen seen;
        private String shardId;

        Processor(Seen seen) {
            this.seen = seen;
        }

        @Override
        public void initialize(InitializationInput in) {
            shardId = in.shardId();
        }

        @Override
        public void processRecords(ProcessRecordsInput in) {
            for (KinesisClientRecord r : in.records()) {
                String data = StandardCharsets.UTF_8.decode(r.data()).toString();
                if (!data.equals("data of " + r.partitionKey())) {
                    throw new IllegalStateException("record " + r.partitionKey() + " has data " + data);
                }
                seen.byKey.computeIfAbsent(r.partitionKey(), k -> new CopyOnWriteArrayList<>()).add(r.sequenceNumber());
            }
            seen.batches.incrementAndGet();
            try {
                in.checkpointer().checkpoint();
            } catch (Exception e) {
                throw new IllegalStateException("checkpoint on " + shardId + " failed", e);
            }
        }

        @Override
        public void leaseLost(LeaseLostInput in) {}

        @Override
        public void shardEnded(ShardEndedInput in) {
            seen.shardEnded.put(shardId, "yes");
            try {
                in.checkpointer().checkpoint();
            } catch (Exception e) {
                throw new IllegalStateException("SHARD_END checkpoint on " + shardId + " failed", e);
            }
        }

        @Override
        public void shutdownRequested(ShutdownRequestedInput in) {
            try {
                in.checkpointer().checkpoint();
            } catch (Exception e) {
                throw new IllegalStateException("shutdown checkpoint on " + shardId + " failed", e);
            }
        }
    }

    private static void run(String name, boolean polling, URI endpoint) throws Exception {
        long t0 = System.nanoTime();
        KinesisAsyncClient kinesis = KinesisClientUtil.createKinesisAsyncClient(KinesisAsyncClient.builder()
                .endpointOverride(endpoint).region(Region.US_EAST_1).credentialsProvider(CREDENTIALS));
        DynamoDbAsyncClient dynamo = DynamoDbAsyncClient.builder().endpointOverride(dynalite.endpoint)
                .region(Region.US_EAST_1).credentialsProvider(CREDENTIALS).build();
        // Never called (NullMetricsFactory); pointed at a closed port so that a call would fail loudly.
        CloudWatchAsyncClient cloudWatch = CloudWatchAsyncClient.builder().endpointOverride(URI.create("http://127.0.0.1:9"))
                .region(Region.US_EAST_1).credentialsProvider(CREDENTIALS).build();

        // The stream and its records: partition key i → data "data of key-i".
        kinesis.createStream(r -> r.streamName(name).shardCount(SHARDS)).join();
        awaitActive(kinesis, name);
        String streamArn = kinesis.describeStreamSummary(r -> r.streamName(name)).join().streamDescriptionSummary()
                .streamARN();
        Map<String, PutRecordsResultEntry> put = new HashMap<>();
        putRecords(kinesis, name, 0, RECORDS, put);
        assertEquals(SHARDS, lastSequenceNumbers(put).size(), "records landed on every shard");

        createLeaseTable(dynamo, name);
        Seen seen = new Seen();
        ConfigsBuilder cfg = new ConfigsBuilder(name, name, kinesis, dynamo, cloudWatch,
                "worker-" + UUID.randomUUID(), () -> new Processor(seen));
        var retrieval = cfg.retrievalConfig().initialPositionInStreamExtended(
                InitialPositionInStreamExtended.newInitialPosition(InitialPositionInStream.TRIM_HORIZON));
        if (polling) {
            retrieval.retrievalSpecificConfig(new PollingConfig(name, kinesis));
        }
        // Timing only, for a short CI run: KCL sleeps shardSyncIntervalMillis (60 s) after the
        // first shard sync of a new application, and its leader assigns leases every
        // leaseAssignmentIntervalMillis (20 s). Nothing about how KCL talks to Kinesis changes.
        var leases = cfg.leaseManagementConfig().shardSyncIntervalMillis(2_000).leaseAssignmentIntervalMillis(2_000L);
        Scheduler scheduler = new Scheduler(cfg.checkpointConfig(), cfg.coordinatorConfig(), leases,
                cfg.lifecycleConfig(), cfg.metricsConfig().metricsFactory(new NullMetricsFactory()),
                cfg.processorConfig(), retrieval);
        Thread worker = new Thread(scheduler, name + "-scheduler");
        worker.setDaemon(true);
        worker.start();
        long started = System.nanoTime();

        long processedMs = -1;
        long reshardedMs = -1;
        try {
            awaitProcessed(name, dynamo, seen, put, null, started);
            processedMs = (System.nanoTime() - started) / 1_000_000;

            // Split shard 0 under the running application, then write more: KCL must finish the
            // parent (SHARD_END checkpoint) and go on with both children.
            long splitAt = System.nanoTime();
            String parent = "shardId-000000000000";
            BigInteger parentEnd = BigInteger.TWO.pow(128).divide(BigInteger.valueOf(SHARDS));
            kinesis.splitShard(r -> r.streamName(name).shardToSplit(parent)
                    .newStartingHashKey(parentEnd.divide(BigInteger.TWO).toString())).join();
            awaitActive(kinesis, name);
            putRecords(kinesis, name, RECORDS, RECORDS + RECORDS_AFTER_SPLIT, put);
            assertEquals(SHARDS + 2, lastSequenceNumbers(put).size(), "records landed on both children");
            awaitProcessed(name, dynamo, seen, put, parent, started);
            reshardedMs = (System.nanoTime() - splitAt) / 1_000_000;

            for (Map.Entry<String, PutRecordsResultEntry> e : put.entrySet()) {
                assertEquals(List.of(e.getValue().sequenceNumber()), seen.byKey.get(e.getKey()),
                        "record " + e.getKey() + " processed once, with PutRecords' sequence number");
            }
            assertTrue(seen.shardEnded.containsKey(parent), "the processor of " + parent + " saw its end");
            // Enhanced fan-out registers a consumer named after the application; polling does not.
            List<String> consumers = kinesis.listStreamConsumers(r -> r.streamARN(streamArn)).join().consumers()
                    .stream().map(c -> c.consumerName()).collect(Collectors.toList());
            assertEquals(polling ? List.of() : List.of(name), consumers);
        } finally {
            boolean stopped = scheduler.startGracefulShutdown().get(60, TimeUnit.SECONDS);
            worker.join(30_000);
            System.out.printf("kcl %s over %s: %d records in %d batches processed and checkpointed; the first %d %d ms after the"
                    + " Scheduler started, the %d written after a split %d ms after the split; %d ms in all; graceful"
                    + " shutdown %s%n", polling ? "polling" : "enhanced fan-out", endpoint, seen.byKey.size(), seen.batches.get(),
                    RECORDS, processedMs, RECORDS_AFTER_SPLIT, reshardedMs, (System.nanoTime() - t0) / 1_000_000,
                    stopped ? "ok" : "incomplete");
            kinesis.close();
            dynamo.close();
            cloudWatch.close();
        }
    }

    private static void awaitActive(KinesisAsyncClient kinesis, String stream) throws InterruptedException {
        while (kinesis.describeStreamSummary(r -> r.streamName(stream)).join().streamDescriptionSummary().streamStatus()
                != StreamStatus.ACTIVE) {
            Thread.sleep(50);
        }
    }

    /** Writes records [from, to) (partition key "STREAM-key-i", data "data of " + key) into `put`. */
    private static void putRecords(KinesisAsyncClient kinesis, String stream, int from, int to,
            Map<String, PutRecordsResultEntry> put) {
        for (int batch = from; batch < to; batch += 500) {
            List<PutRecordsRequestEntry> entries = new ArrayList<>();
            for (int i = batch; i < Math.min(to, batch + 500); i++) {
                String key = stream + "-key-" + i;
                entries.add(PutRecordsRequestEntry.builder().partitionKey(key)
                        .data(SdkBytes.fromString("data of " + key, StandardCharsets.UTF_8)).build());
            }
            var out = kinesis.putRecords(r -> r.streamName(stream).records(entries)).join();
            assertEquals(0, out.failedRecordCount());
            for (int i = 0; i < entries.size(); i++) {
                put.put(entries.get(i).partitionKey(), out.records().get(i));
            }
        }
    }

    /** shard id → the last sequence number written to it: where its checkpoint must end. */
    private static Map<String, String> lastSequenceNumbers(Map<String, PutRecordsResultEntry> put) {
        Map<String, String> last = new TreeMap<>();
        for (PutRecordsResultEntry e : put.values()) {
            last.merge(e.shardId(), e.sequenceNumber(),
                    (a, b) -> new BigInteger(a).compareTo(new BigInteger(b)) >= 0 ? a : b);
        }
        return last;
    }

    /**
     * Waits until every record in `put` was processed and every lease's checkpoint is its shard's
     * last sequence number — SHARD_END for `closed` (whose lease KCL may also have cleaned up).
     */
    private static void awaitProcessed(String name, DynamoDbAsyncClient dynamo, Seen seen,
            Map<String, PutRecordsResultEntry> put, String closed, long started) throws InterruptedException {
        Map<String, String> expected = lastSequenceNumbers(put);
        if (closed != null) {
            expected.put(closed, "SHARD_END");
        }
        Map<String, String> checkpoints = Map.of();
        long deadline = started + RUN_TIMEOUT.toNanos();
        while (System.nanoTime() < deadline) {
            checkpoints = checkpoints(dynamo, name);
            Map<String, String> cleaned = new TreeMap<>(expected);
            if (closed != null && !checkpoints.containsKey(closed)) {
                cleaned.remove(closed);
            }
            if (seen.byKey.keySet().containsAll(put.keySet()) && checkpoints.equals(cleaned)) {
                return;
            }
            Thread.sleep(250);
        }
        fail(name + ": " + RUN_TIMEOUT.toSeconds() + " s after the Scheduler started KCL had processed "
                + seen.byKey.size() + " of " + put.size() + " records; checkpoints " + checkpoints + ", expected "
                + expected + "\nlease table:\n" + leases(dynamo, name) + "\nkinesin log tail:\n"
                + kinesin.logTail(4000) + "\ndynalite log tail:\n" + dynalite.logTail(2000));
    }

    /**
     * The lease table as KCL 3.x would create it, with its `LeaseOwnerToLeaseKeyIndex` GSI, made
     * beforehand (as infrastructure code would): dynalite cannot add a GSI to an existing table
     * (it validates UpdateTable's GlobalSecondaryIndexUpdates.Create, asking for a
     * ProvisionedThroughput even on a PAY_PER_REQUEST table, then ignores it), which is how KCL
     * adds it. KCL finds the table and the index ACTIVE and goes on.
     */
    private static void createLeaseTable(DynamoDbAsyncClient dynamo, String table) {
        dynamo.createTable(r -> r.tableName(table)
                .attributeDefinitions(
                        a -> a.attributeName("leaseKey").attributeType(ScalarAttributeType.S),
                        a -> a.attributeName("leaseOwner").attributeType(ScalarAttributeType.S))
                .keySchema(k -> k.attributeName("leaseKey").keyType(KeyType.HASH))
                .billingMode(BillingMode.PAY_PER_REQUEST)
                .globalSecondaryIndexes(g -> g.indexName("LeaseOwnerToLeaseKeyIndex")
                        .keySchema(k -> k.attributeName("leaseOwner").keyType(KeyType.HASH),
                                k -> k.attributeName("leaseKey").keyType(KeyType.RANGE))
                        .projection(p -> p.projectionType(ProjectionType.KEYS_ONLY))))
                .join();
    }

    /** shard id → checkpoint, from the lease table (the table is named after the application). */
    private static Map<String, String> checkpoints(DynamoDbAsyncClient dynamo, String table) {
        try {
            return scan(dynamo, table);
        } catch (Exception e) {
            return Map.of(); // the table does not exist yet
        }
    }

    private static Map<String, String> scan(DynamoDbAsyncClient dynamo, String table) {
        Map<String, String> out = new TreeMap<>();
        Map<String, AttributeValue> start = null;
        do {
            final Map<String, AttributeValue> from = start;
            var page = dynamo.scan(r -> r.tableName(table).consistentRead(true).exclusiveStartKey(from)).join();
            for (Map<String, AttributeValue> item : page.items()) {
                AttributeValue key = item.get("leaseKey");
                AttributeValue checkpoint = item.get("checkpoint");
                if (key != null && key.s() != null && key.s().startsWith("shardId-") && checkpoint != null) {
                    out.put(key.s(), checkpoint.s());
                }
            }
            start = page.hasLastEvaluatedKey() && !page.lastEvaluatedKey().isEmpty() ? page.lastEvaluatedKey() : null;
        } while (start != null);
        return out;
    }

    /** For failure messages: the lease table's items. */
    static String leases(DynamoDbAsyncClient dynamo, String table) {
        try {
            return dynamo.scan(r -> r.tableName(table)).join().items().stream().map(Object::toString)
                    .collect(Collectors.joining("\n"));
        } catch (Exception e) {
            return "(no lease table: " + e + ")";
        }
    }
}
