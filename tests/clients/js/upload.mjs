// Uploads one file to Broker's tus endpoint with tus-js-client, as a Node.js sender would; driven
// by tests/e2e/tus_clients.rs, which reads the lines it prints on stdout:
//   resumed <url>                      a previous upload was found in the URL storage
//   url <url>                          the upload's URL is known (after its creation POST)
//   response <METHOD> <url> <status> <Upload-Offset or ->   every answer the client got
//   chunk <bytes> <accepted> <total>   a PATCH (or creation-with-upload POST) was accepted
//   paused <accepted>                  TUS_PAUSE_AT was reached: the next PATCH never starts
//   done <url>                         the upload succeeded
// The bearer token is read from BROKER_TOKEN and never printed.
//
// Settings (environment):
//   BROKER_TUS_ENDPOINT  the upload's creation URL: …/broker/api/v1/filetransfer/upload/tus/{id}
//   BROKER_TOKEN         a token with altinn:broker.write
//   TUS_FILE             the file to send
//   TUS_CHUNK_SIZE       bytes per PATCH
//   TUS_PARALLEL         partial uploads run at once and concatenated (default 1: one upload)
//   TUS_URL_STORAGE      a JSON file where the upload URL is kept; a run that finds one resumes
//   TUS_PAUSE_AT         once this many bytes are accepted, hold the next PATCH until killed
//   TUS_DATA_DURING_CREATION  "1": send the first chunk with the creation POST

import { createReadStream, existsSync, writeFileSync } from 'node:fs'
import { FileUrlStorage, Upload } from 'tus-js-client'

function setting(name, fallback) {
  const value = process.env[name]
  if (value === undefined || value === '') {
    if (fallback === undefined) {
      throw new Error(`${name} is not set`)
    }
    return fallback
  }
  return value
}

function say(...words) {
  process.stdout.write(`${words.join(' ')}\n`)
}

const endpoint = setting('BROKER_TUS_ENDPOINT')
const token = setting('BROKER_TOKEN')
const file = setting('TUS_FILE')
const chunkSize = Number(setting('TUS_CHUNK_SIZE'))
const parallelUploads = Number(setting('TUS_PARALLEL', '1'))
const storagePath = setting('TUS_URL_STORAGE', '')
const pauseAt = Number(setting('TUS_PAUSE_AT', 'Infinity'))
const dataDuringCreation = setting('TUS_DATA_DURING_CREATION', '0') === '1'

let accepted = 0
let paused = false

const options = {
  endpoint,
  chunkSize,
  parallelUploads,
  uploadDataDuringCreation: dataDuringCreation,
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: 'input.bin', filetype: 'application/octet-stream' },
  // Short delays: the broker is on loopback; a 423 (another request still writing) is retried.
  retryDelays: [0, 250, 500, 1000, 2000],
  onUploadUrlAvailable() {
    say('url', upload.url)
  },
  onAfterResponse(req, res) {
    say('response', req.getMethod(), req.getURL(), res.getStatus(), res.getHeader('Upload-Offset') ?? '-')
  },
  onChunkComplete(bytes, bytesAccepted, bytesTotal) {
    accepted = bytesAccepted
    say('chunk', bytes, bytesAccepted, bytesTotal)
  },
  onBeforeRequest(req) {
    if (req.getMethod() !== 'PATCH' || paused || accepted < pauseAt) {
      return undefined
    }
    // Stand still as a process killed in the middle of its upload would: the test kills us.
    paused = true
    say('paused', accepted)
    setInterval(() => {}, 60_000)
    return new Promise(() => {})
  },
  onSuccess() {
    say('done', upload.url)
  },
  onError(error) {
    process.stderr.write(`upload failed: ${error}\n`)
    process.exit(1)
  },
}

if (storagePath !== '') {
  // FileUrlStorage locks the file, which must exist.
  if (!existsSync(storagePath)) {
    writeFileSync(storagePath, '{}')
  }
  options.urlStorage = new FileUrlStorage(storagePath)
}

const upload = new Upload(createReadStream(file), options)
if (storagePath !== '') {
  const previous = await upload.findPreviousUploads()
  if (previous.length > 0) {
    say('resumed', previous[0].uploadUrl)
    upload.resumeFromPreviousUpload(previous[0])
  }
}
upload.start()
