// The Node reference stack for `make bench`: what Celigo's express-integrator-extension server
// does (express 4 + body-parser JSON, bearer system token, POST /function → callFunction of
// integrator-extension 0.3.12), hosting the same functions as the Rust conformance reference
// module's raw `preMap` / `preSavePage` echoes (tests/src/reference.rs), in `hooks` and at the
// top level. Listens on 127.0.0.1:$PORT (0 = any free port) and prints `listening on http://…`.
'use strict'

const express = require('express')
const bodyParser = require('body-parser')
const Extension = require('integrator-extension')

const SYSTEM_TOKEN = process.env.SYSTEM_TOKEN || 'SYS_TOKEN'

function preSavePage (options, callback) {
  return callback(null, {
    data: options.data === undefined ? [] : options.data,
    errors: options.errors === undefined ? [] : options.errors,
    abort: false,
    newErrorsAndRetryData: []
  })
}

function preMap (options, callback) {
  const out = Array.isArray(options.data) ? options.data.map(d => ({ data: d })) : []
  return callback(null, out)
}

const functions = { preSavePage, preMap }
const extension = new Extension()

function bearerToken (req) {
  const h = req.get('authorization') || ''
  const m = /^Bearer (.+)$/.exec(h)
  return m ? m[1] : undefined
}

extension.loadConfiguration({ diy: Object.assign({ hooks: functions }, functions) }, err => {
  if (err) {
    console.error('cannot load configuration', err)
    process.exit(1)
  }
  const app = express()
  app.use(bodyParser.json({ limit: '50mb' }))
  app.post('/function', (req, res) => {
    const token = bearerToken(req)
    if (!token) return res.status(401).json({ errors: [{ code: 'unauthorized', message: 'Bearer authentication header not found.' }] })
    if (token !== SYSTEM_TOKEN) return res.status(401).json({ errors: [{ code: 'unauthorized', message: 'Invalid system token.' }] })
    const body = req.body || {}
    const functionOptions = body.options
    if (functionOptions && typeof functionOptions === 'object') functionOptions.bearerToken = token
    const extensionOptions = {
      diy: body.diy,
      _connectorId: body._connectorId,
      function: body.function,
      type: body.type,
      maxResponseSize: body.maxResponseSize
    }
    extension.callFunction(functionOptions, extensionOptions, (e, result) => {
      if (e) return res.status(e.statusCode || 422).json({ errors: e.errors })
      return res.json(result)
    })
  })
  const server = app.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    console.log('listening on http://127.0.0.1:' + server.address().port)
  })
})
