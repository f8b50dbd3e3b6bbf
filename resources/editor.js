/*
 * The teleinfo nodes' editor toolkit: what their edit dialogs share, once. Node-RED serves it as
 * resources/node-red-contrib-teleinfo/editor.js and runs it before the node definitions that name it.
 *
 * - register(type, definition): RED.nodes.registerType with what every teleinfo node has in common (category, the
 *   label and its style, port labels from the node's i18n space);
 * - form(type, rows, options): the dialog's template, from rows of controls (text, typed, select, check,
 *   checkLabelled, area, say), each row a label with its icon; then the name row and the tip;
 * - validators: positive(type), measurement(type, message), wholeAtLeast(type, min), valueOrEnv(prop, type, isConfig, check);
 * - typedInput(prop, types, isConfig): a typedInput whose type is kept in the node's `<prop>Type`;
 * - toggleRows(selector, rows): show the rows a select or checkbox value asks for.
 */
window.teleinfoEditor =
  window.teleinfoEditor ||
  (function () {
    var esc = function (s) {
      return String(s).replace(/[&<>"]/g, function (c) {
        return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c];
      });
    };

    /** The controls of a row: each returns its HTML for a node type and an input prefix. */
    var controls = {
      /** A text field; `opt.width` (css), `opt.placeholder` (an i18n key of the type, or `=literal`). */
      text: function (prop, opt) {
        opt = opt || {};
        return function (type, prefix) {
          var placeholder = '';
          if (opt.placeholder)
            placeholder =
              opt.placeholder.charAt(0) === '='
                ? ' placeholder="' + esc(opt.placeholder.slice(1)) + '"'
                : ' data-i18n="[placeholder]' + key(type, opt.placeholder) + '"';
          return (
            '<input type="' +
            (opt.password ? 'password' : 'text') +
            '" id="' +
            prefix +
            prop +
            '"' +
            (opt.width ? ' style="width: ' + opt.width + '"' : '') +
            placeholder +
            ' />'
          );
        };
      },
      /** A typedInput's field (an example as its placeholder) and the hidden one that keeps its type. */
      typed: function (prop, width, example) {
        return function (type, prefix) {
          return (
            '<input type="text" id="' +
            prefix +
            prop +
            '" style="width: ' +
            (width || '70%') +
            '"' +
            (example ? ' placeholder="' + esc(example) + '"' : '') +
            ' /><input type="hidden" id="' +
            prefix +
            prop +
            'Type" />'
          );
        };
      },
      /**
       * A select of `values`, each labelled by the i18n key `<labels>.<value>` of the type (a value given as
       * [value, name] is labelled `<labels>.<name>`).
       */
      select: function (prop, values, labels, width) {
        return function (type, prefix) {
          return (
            '<select id="' +
            prefix +
            prop +
            '" style="width: ' +
            (width || '70%') +
            '">' +
            values
              .map(function (v) {
                var pair = Array.isArray(v) ? v : [v, v];
                return (
                  '<option value="' +
                  esc(pair[0]) +
                  '" data-i18n="' +
                  key(type, labels + '.' + pair[1]) +
                  '"></option>'
                );
              })
              .join('') +
            '</select>'
          );
        };
      },
      check: function (prop, style) {
        return function (type, prefix) {
          return (
            '<input type="checkbox" id="' +
            prefix +
            prop +
            '" style="display: inline-block; width: auto; vertical-align: top' +
            (style ? '; ' + style : '') +
            '" />'
          );
        };
      },
      /** A checkbox followed by its own label (the row's label left empty). */
      checkLabelled: function (prop, labelKey) {
        return function (type, prefix) {
          return (
            controls.check(prop)(type, prefix) +
            '<label for="' +
            prefix +
            prop +
            '" style="width: auto" data-i18n="' +
            key(type, labelKey) +
            '"></label>'
          );
        };
      },
      area: function (prop, rows, placeholder) {
        return function (type, prefix) {
          return (
            '<textarea id="' +
            prefix +
            prop +
            '" rows="' +
            rows +
            '" style="width: 70%"' +
            (placeholder ? ' data-i18n="[placeholder]' + key(type, placeholder) + '"' : '') +
            '></textarea>'
          );
        };
      },
      /** Words between controls: an i18n key of the type, or `=literal` (a unit). */
      say: function (what) {
        return function (type) {
          return what.charAt(0) === '='
            ? ' ' + esc(what.slice(1)) + ' '
            : ' <span data-i18n="' + key(type, what) + '"></span> ';
        };
      },
    };

    /** `label.x` is the type's own (`<type>.label.x`); `node-red:...` is Node-RED's. */
    function key(type, k) {
      return k.indexOf(':') >= 0 ? k : type + '.' + k;
    }

    var api = {
      text: controls.text,
      typed: controls.typed,
      select: controls.select,
      check: controls.check,
      checkLabelled: controls.checkLabelled,
      area: controls.area,
      say: controls.say,

      /**
       * The dialog of `type`: `rows` are [prop, icon, labelKey, control, control...] (or {html} for a row of its
       * own); `options.config` for a config node, `options.tip` an i18n key, `options.rowClass` {prop: class}.
       * `options.rowId` {prop: id}. A name row comes last, unless `options.name` is false.
       */
      form: function (type, rows, options) {
        options = options || {};
        var prefix = options.config ? 'node-config-input-' : 'node-input-';
        var html = rows
          .map(function (row) {
            if (row.html) return row.html;
            var prop = row[0];
            var cls = options.rowClass && options.rowClass[prop] ? ' ' + options.rowClass[prop] : '';
            var id = options.rowId && options.rowId[prop] ? ' id="' + options.rowId[prop] + '"' : '';
            var text =
              row[2] == null
                ? ''
                : row[2].charAt(0) === '='
                  ? esc(row[2].slice(1))
                  : '<span data-i18n="' + key(type, row[2]) + '"></span>';
            // No icon: a row whose control carries its own label (checkLabelled).
            var label =
              row[1] === null
                ? '<label>&nbsp;</label>'
                : '<label for="' +
                  prefix +
                  prop +
                  '"><i class="fa fa-' +
                  row[1] +
                  '"></i> ' +
                  text +
                  '</label>';
            return (
              '<div class="form-row' +
              cls +
              '"' +
              id +
              '>' +
              label +
              row
                .slice(3)
                .map(function (c) {
                  return c(type, prefix);
                })
                .join('') +
              '</div>'
            );
          })
          .join('\n');
        if (options.name !== false)
          html +=
            '<div class="form-row"><label for="' +
            prefix +
            'name"><i class="fa fa-tag"></i> <span data-i18n="node-red:common.label.name"></span></label>' +
            '<input type="text" id="' +
            prefix +
            'name" data-i18n="[placeholder]node-red:common.label.name" /></div>';
        if (options.tip) html += '<div class="form-tips" data-i18n="' + key(type, options.tip) + '"></div>';
        $('<script type="text/html">').attr('data-template-name', type).text(html).appendTo(document.body);
      },

      /** RED.nodes.registerType, with what every teleinfo node has unless it says otherwise. */
      register: function (type, def) {
        var label = def.paletteLabel || type;
        var full = $.extend(
          {
            category: 'teleinfo',
            color: '#C7E9C0',
            label: function () {
              return this.name || label;
            },
            labelStyle: function () {
              return this.name ? 'node_label_italic' : '';
            },
          },
          def,
        );
        if (def.inputs > 0 && !def.inputLabels)
          full.inputLabels = function () {
            return this._(type + '.label.input');
          };
        if (def.outputs > 0 && !def.outputLabels)
          full.outputLabels = function (i) {
            return this._(type + '.label.output' + (def.outputs > 1 ? i + 1 : ''));
          };
        RED.nodes.registerType(type, full);
      },

      /** A number above 0, or empty (the default), or `${VAR}`; else `<type>.<message>` with {value}. */
      positive: function (type, message, orZero) {
        return function (v, opt) {
          if (
            v === '' ||
            v === undefined ||
            (orZero ? Number(v) >= 0 : Number(v) > 0) ||
            /^\$\{[^}]+\}$/.test(v)
          )
            return true;
          return opt ? this._(type + '.' + (message || 'errors.number'), { value: v }) : false;
        };
      },

      /** An InfluxDB measurement: no space or comma, not starting with _ (InfluxDB's own); else `<type>.<message>`. */
      measurement: function (type, message) {
        return function (v, opt) {
          if (/^[^_\s,][^\s,]*$/.test(v || '')) return true;
          return opt ? this._(type + '.' + message, { value: v }) : false;
        };
      },

      /** A whole number of at least `min`; else `<type>.<message>` with {value}. */
      wholeAtLeast: function (type, min, message) {
        return function (v, opt) {
          if (Number.isInteger(Number(v)) && Number(v) >= min) return true;
          return opt ? this._(type + '.' + message, { value: v }) : false;
        };
      },

      /**
       * The validator of a typedInput that offers the env type: in env mode, the name of an environment variable;
       * otherwise `check(value, opt)` (or anything). `prop` is the property, `type` the node type (its i18n space).
       */
      valueOrEnv: function (prop, type, isConfig, check) {
        return function (v, opt) {
          var field = $('#node-' + (isConfig ? 'config-' : '') + 'input-' + prop + 'Type');
          if ((field.val() || this[prop + 'Type']) !== 'env') return check ? check.call(this, v, opt) : true;
          if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(v || '')) return true;
          return opt ? this._(type + '.errors.env', { value: v }) : false;
        };
      },

      /** Make `prop`'s field a typedInput of `types`, its type kept in `<prop>Type`. */
      typedInput: function (prop, types, isConfig) {
        var prefix = isConfig ? '#node-config-input-' : '#node-input-';
        $(prefix + prop).typedInput({ types: types, typeField: prefix + prop + 'Type' });
      },

      /** Show the rows of `rows` ({value: selector}) that the value of `field` (a select or a checkbox) names. */
      toggleRows: function (field, rows) {
        var show = function () {
          var value = $(field).is(':checkbox') ? String($(field).is(':checked')) : $(field).val();
          // A row several values name is shown when any of them is the value.
          var shown = {};
          $.each(rows, function (v, selector) {
            shown[selector] = shown[selector] || v === value;
          });
          $.each(shown, function (selector, show) {
            $(selector).toggle(show);
          });
        };
        $(field).on('change', show);
        show();
      },
    };
    return api;
  })();
