package metrics

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// ratioQuery is a PromQL query of the shape scale × numerator / denominator.
type ratioQuery struct {
	numerator, denominator string
	// scale is the product of the number factors (100 for a percentage).
	scale float64
}

// splitRatio splits a PromQL ratio, such as the builtin success rate
// `100 * (sum(rate(ok[1m])) or on() vector(0)) / sum(rate(all[1m]))`, into
// its numerator, its denominator and its constant factor, so that the two
// counts can be queried on their own. It accepts number factors before,
// between and after the two terms, and one pair of parentheses around a
// ratio; anything else (a sum, 1 - ratio, a vector matching clause on the
// division) is an error that says what shape is needed.
func splitRatio(query string) (ratioQuery, error) {
	fail := func(why string) (ratioQuery, error) {
		return ratioQuery{}, fmt.Errorf("test: proportion needs a query of the form numerator / denominator, optionally times a number, such as 100 * sum(rate(ok[{{ interval }}])) / sum(rate(all[{{ interval }}])): %s", why)
	}
	factors, ops, err := topLevelFactors(query)
	if err != nil {
		return fail(err.Error())
	}
	rq := ratioQuery{scale: 1}
	var terms []string
	for i, f := range factors {
		op := byte('*')
		if i > 0 {
			op = ops[i-1]
		}
		if c, err := strconv.ParseFloat(f, 64); err == nil {
			if op == '/' {
				rq.scale /= c
			} else {
				rq.scale *= c
			}
			continue
		}
		switch {
		case len(terms) == 0 && op == '*':
			terms = append(terms, f)
		case len(terms) == 1 && op == '/':
			terms = append(terms, f)
		default:
			return fail(fmt.Sprintf("%q is not the numerator or the denominator", f))
		}
	}
	switch len(terms) {
	case 1:
		inner, ok := unwrap(terms[0])
		if !ok {
			return fail("there is no division")
		}
		sub, err := splitRatio(inner)
		if err != nil {
			return ratioQuery{}, err
		}
		sub.scale *= rq.scale
		return sub, nil
	case 2:
		for _, t := range terms {
			if word := leadingWord(t); word == "on" || word == "ignoring" || word == "group_left" || word == "group_right" || word == "bool" {
				return fail(fmt.Sprintf("the division has a %s modifier", word))
			}
		}
		rq.numerator, rq.denominator = terms[0], terms[1]
		return rq, nil
	}
	return fail("there is no division")
}

// topLevelFactors splits an expression at its top-level * and /
// operators, outside parentheses, brackets, braces and strings. A factor
// holding another top-level operator (+, -, %, ^, comparisons, and, or,
// unless, atan2) is an error.
func topLevelFactors(expr string) ([]string, []byte, error) {
	var factors []string
	var ops []byte
	depth, start := 0, 0
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch c {
		case '"', '\'', '`':
			end := closingQuote(expr, i)
			if end < 0 {
				return nil, nil, fmt.Errorf("a string is not closed")
			}
			i = end
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth < 0 {
				return nil, nil, fmt.Errorf("the parentheses do not match")
			}
		case '*', '/':
			if depth == 0 {
				factors = append(factors, strings.TrimSpace(expr[start:i]))
				ops = append(ops, c)
				start = i + 1
			}
		case '+', '-', '%', '^', '=', '!', '<', '>':
			if depth == 0 && (c != '-' || !isExponentSign(expr, i)) {
				return nil, nil, fmt.Errorf("the operator %q outside parentheses", c)
			}
		}
		if depth == 0 && isWordStart(expr, i) {
			switch w := wordAt(expr, i); w {
			case "and", "or", "unless", "atan2":
				return nil, nil, fmt.Errorf("the operator %q outside parentheses", w)
			}
		}
	}
	if depth != 0 {
		return nil, nil, fmt.Errorf("the parentheses do not match")
	}
	factors = append(factors, strings.TrimSpace(expr[start:]))
	for _, f := range factors {
		if f == "" {
			return nil, nil, fmt.Errorf("an operand is missing")
		}
	}
	return factors, ops, nil
}

// closingQuote returns the index of the quote that closes the string
// opened at i, or -1.
func closingQuote(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j
		}
	}
	return -1
}

// isExponentSign reports whether the '-' at i is the sign of a number's
// exponent, as in 1e-3.
func isExponentSign(s string, i int) bool {
	return i >= 2 && (s[i-1] == 'e' || s[i-1] == 'E') && s[i-2] >= '0' && s[i-2] <= '9'
}

// isWordStart reports whether an identifier starts at i.
func isWordStart(s string, i int) bool {
	r := rune(s[i])
	if !unicode.IsLetter(r) && r != '_' {
		return false
	}
	if i == 0 {
		return true
	}
	p := rune(s[i-1])
	return !unicode.IsLetter(p) && !unicode.IsDigit(p) && p != '_' && p != ':'
}

// wordAt returns the identifier starting at i.
func wordAt(s string, i int) string {
	j := i
	for j < len(s) && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])) || s[j] == '_' || s[j] == ':') {
		j++
	}
	return s[i:j]
}

// leadingWord returns the identifier a term starts with.
func leadingWord(term string) string {
	if term == "" || !isWordStart(term, 0) {
		return ""
	}
	return wordAt(term, 0)
}

// unwrap removes one pair of parentheses around the whole expression.
func unwrap(expr string) (string, bool) {
	if !strings.HasPrefix(expr, "(") || !strings.HasSuffix(expr, ")") {
		return "", false
	}
	depth := 0
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '"', '\'', '`':
			if end := closingQuote(expr, i); end > 0 {
				i = end
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(expr)-1 {
				return "", false // the first parenthesis closes before the end: (a) / (b)
			}
		}
	}
	return expr[1 : len(expr)-1], true
}
