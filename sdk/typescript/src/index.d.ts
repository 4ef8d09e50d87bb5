// Types of @sotto/client, written by hand from the appliance's OpenAPI document (/schema/openapi.json).
// The appliance's tests compare every interface below that names a schema (`@schema Name`) with that
// schema's properties, and ROUTES with the document's paths, so a change on either side fails a test.

export declare const ROUTES: Readonly<Record<
  "upload" | "job" | "jobEvents" | "cancel" | "list" | "transcript" | "export" | "delete" | "search",
  readonly [method: "GET" | "POST" | "DELETE", path: string]
>>;

/** The appliance refused or failed a request. */
export declare class SottoError extends Error {
  constructor(status: number, detail: string);
  /** The HTTP status (422 when a job ended without a transcript). */
  readonly status: number;
  /** The appliance's own message. */
  readonly detail: string;
}

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";

/** @schema Job */
export interface Job {
  id: string;
  job_id: string;
  state: JobState;
  stage: string | null;
  progress: number;
  eta_seconds: number | null;
  duration: number | null;
  priority: number;
  filename: string;
  size_bytes: number;
  models: string[];
  options: Record<string, unknown>;
  error: string | null;
  cancel_requested: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  transcript_id: string | null;
  transcript_ids: string[];
  workspace_id?: string | null;
  /** Cluster mode: the worker node that ran (or runs) the job. */
  node?: string | null;
  /** Cluster mode: 2 when a worker node stopped and the job was run again on another. */
  attempts?: number;
}

/** @schema Word */
export interface Word {
  start: number;
  end: number;
  word: string;
  probability?: number | null;
  speaker?: string | null;
  edited?: boolean;
  estimated?: boolean;
}

/** @schema Segment */
export interface Segment {
  id: number;
  start: number;
  end: number;
  text: string;
  speaker?: string | null;
  note?: string;
  words?: Word[];
  sid?: number | null;
  avg_logprob?: number | null;
  no_speech_prob?: number | null;
  speaker_confidence?: number | null;
}

/** @schema Speaker */
export interface Speaker {
  id: string;
  label: string;
  display_name?: string | null;
}

/** @schema TranscriptSummary */
export interface TranscriptSummary {
  id: string;
  title?: string | null;
  language?: string | null;
  language_probability?: number | null;
  duration?: number;
  model?: string | null;
  task?: string;
  filename?: string | null;
  size_bytes?: number | null;
  job_id?: string | null;
  workspace_id?: string | null;
  created_by?: string | null;
  created_at?: string | null;
  updated_at?: string | null;
  revision?: number;
  private?: boolean;
}

/** @schema Transcript */
export interface Transcript extends TranscriptSummary {
  text?: string;
  note?: string;
  options?: Record<string, unknown>;
  timings?: Record<string, number>;
  diarization?: Record<string, unknown> | null;
  speakers?: Speaker[];
  segments?: Segment[];
}

/** @schema TranscriptPage */
export interface TranscriptPage {
  items: TranscriptSummary[];
  total: number;
  limit: number;
  offset: number;
}

/** GET /api/v1/search (an untyped object in the OpenAPI document). */
export interface SearchResult {
  items: Array<Record<string, unknown> & { transcript_id: string }>;
  total: number;
  limit: number;
  offset: number;
  query: string;
}

/** The upload options every door of the appliance shares (appliance/transcription/upload_options.py). */
export interface UploadOptions {
  model?: string;
  language?: string;
  task?: "transcribe" | "translate";
  word_timestamps?: boolean;
  vad_filter?: boolean;
  beam_size?: number;
  temperature?: number;
  initial_prompt?: string;
  hotwords?: string;
  priority?: number;
  diarize?: boolean;
  diarization_engine?: "pyannote" | "embedded" | "channel";
  num_speakers?: number;
  min_speakers?: number;
  max_speakers?: number;
  channel_names?: string | string[];
  sentences?: boolean;
  private?: boolean;
  workspace_id?: string;
}

export type TextExportFormat = "txt" | "srt" | "vtt" | "json" | "md" | "csv";
export type ExportFormat = TextExportFormat | "docx" | "pdf";

export interface ExportOptions {
  timestamps?: boolean;
  speakers?: boolean;
  max_chars_per_line?: number;
  max_lines?: number;
  max_cue_seconds?: number;
  min_gap_seconds?: number;
  vtt_voice_tags?: boolean;
}

export type RecordingInput = string | Blob | Uint8Array;

export declare class SottoClient {
  constructor(baseUrl: string, apiKey: string, init?: { fetch?: typeof fetch });
  readonly baseUrl: string;
  request(method: string, path: string, init?: RequestInit & { query?: Record<string, unknown> }): Promise<Response>;
  upload(
    file: RecordingInput,
    options?: UploadOptions,
    init?: { filename?: string; onProgress?: (sent: number, total: number) => void; signal?: AbortSignal },
  ): Promise<Job>;
  job(jobId: string): Promise<Job>;
  wait(jobId: string, init?: { onProgress?: (job: Job) => void; signal?: AbortSignal }): Promise<Job>;
  cancel(jobId: string): Promise<Job>;
  transcribe(
    file: RecordingInput,
    options?: UploadOptions,
    init?: {
      filename?: string;
      onUpload?: (sent: number, total: number) => void;
      onProgress?: (job: Job) => void;
      signal?: AbortSignal;
    },
  ): Promise<Transcript>;
  transcript(transcriptId: string): Promise<Transcript>;
  list(page?: { limit?: number; offset?: number; workspace_id?: string }): Promise<TranscriptPage>;
  search(
    q: string,
    filters?: { language?: string; speaker?: string; from?: string; to?: string; limit?: number; offset?: number },
  ): Promise<SearchResult>;
  export(transcriptId: string, format?: TextExportFormat, options?: ExportOptions): Promise<string>;
  export(transcriptId: string, format: "docx" | "pdf", options?: ExportOptions): Promise<Uint8Array>;
  delete(transcriptId: string): Promise<void>;
}
