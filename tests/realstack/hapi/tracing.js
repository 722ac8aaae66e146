'use strict';
// OpenTelemetry SDK for the catalog service, loaded before anything else:
//   node --require ./tracing.js server.js
// Spans and log records leave through the SDK's OTLP/HTTP (JSON) exporters to
// OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces, /v1/logs); service.name comes from
// OTEL_SERVICE_NAME. pino lines get trace_id/span_id from the pino
// instrumentation, which also sends each line to the logs SDK.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { HapiInstrumentation } = require('@opentelemetry/instrumentation-hapi');
const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici');
const { PinoInstrumentation } = require('@opentelemetry/instrumentation-pino');

const delay = Number(process.env.OTEL_FLUSH_DELAY_MS || 500);

const sdk = new NodeSDK({
  spanProcessors: [
    new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: delay }),
  ],
  logRecordProcessors: [
    new BatchLogRecordProcessor({ exporter: new OTLPLogExporter(), scheduledDelayMillis: delay }),
  ],
  instrumentations: [
    new HttpInstrumentation({
      // The gateway's request id on the server span: http.request.header.x-request-id
      headersToSpanAttributes: { server: { requestHeaders: ['x-request-id'] } },
    }),
    new HapiInstrumentation(),
    new UndiciInstrumentation(),
    new PinoInstrumentation(),
  ],
});
sdk.start();

module.exports = { sdk };
